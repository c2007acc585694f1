"""ONNX Runtime's device API and plugin providers: what this machine offers besides the CPU.

Covers: registering the OpenVINO plugin provider (package ``onnxruntime-ep-openvino``)
with ONNX Runtime, once per process, and saying in one sentence why it is not usable
where it is not (not installed, no wheel for this platform, no Intel device); the
devices every registered provider offers (``ort.get_ep_devices()``) as plain rows; the
provider options that pin OpenVINO's precision and threads; and the one line that
says whether this machine has a second real provider. Does not cover: the table of
every provider (``providers.py``), sessions (``providers.make_session``), nor where
a session's nodes run (``placement.py``).

Measured with ONNX Runtime 1.31.1 and the plugin 1.8.1: the plugin registers on any
x86-64 CPU, but offers a device only where the vendor is Intel (its factory skips
other vendors' CPUs and GPUs), so on an AMD CPU it lists no device. It ignores the
provider options ``precision`` and ``num_of_threads`` (a warning in ONNX Runtime's
log) and takes them as its ``load_config``; left alone, OpenVINO runs bf16 on a CPU
with bf16 instructions. The name list ``providers=["OpenVINOExecutionProvider"]``
does not reach the plugin (the session gets the CPU alone, without a warning): a
plugin provider goes into a session through the device API,
``SessionOptions.add_provider_for_devices``.
"""
from __future__ import annotations

import importlib.util
import json
import platform
from dataclasses import dataclass, field

from .errors import InvalidArgumentError
from .formatting import format_table

__all__ = ["OPENVINO", "OPENVINO_PLUGIN", "OPENVINO_PLUGIN_PIN", "PluginStatus", "DeviceInfo",
           "register_openvino", "list_devices", "format_devices", "provider_devices",
           "openvino_options", "describe_second_provider"]

OPENVINO = "OpenVINOExecutionProvider"
OPENVINO_PLUGIN = "onnxruntime-ep-openvino"
OPENVINO_PLUGIN_PIN = "1.8.1"  # pyproject.toml pins the same (tests/test_devices.py)
_MODULE = "onnxruntime_ep_openvino"
_REGISTRATION_NAME = "course-openvino"
_WHEELS = "Linux x86_64 and Windows x64"
_INTEL_VENDOR_ID = 0x8086
_PRECISIONS = ("f32", "bf16", "f16")  # OpenVINO's CPU precision hints

_registered: dict[str, bool] = {}  # provider -> registered by this module in this process


@dataclass(frozen=True)
class PluginStatus:
    """What happened when a plugin provider was registered, and why it is not usable."""

    provider: str
    registered: bool
    devices: tuple[str, ...] = ()  # device types it offers here, e.g. ("CPU",)
    reason: str = ""  # one sentence when it is not usable, with what it would take

    @property
    def usable(self) -> bool:
        """Registered and offering at least one device on this machine."""
        return self.registered and bool(self.devices)


@dataclass(frozen=True)
class DeviceInfo:
    """One device a provider offers (an ``OrtEpDevice``), as plain data."""

    provider: str
    device_type: str  # "CPU", "GPU" or "NPU"
    vendor: str  # the hardware's vendor, e.g. "AMD" or "Intel"
    vendor_id: int
    provider_vendor: str  # who wrote the provider, e.g. "Microsoft" or "Intel"
    metadata: dict = field(default_factory=dict)  # the provider's key-value pairs


def _platform_reason(system: str, machine: str) -> str | None:
    """Why the plugin has no wheel on this platform, with what it would take; None: it has."""
    given, machine = machine, machine.lower()
    if (system, machine) in (("Linux", "x86_64"), ("Windows", "amd64")):
        return None
    if system == "Darwin":
        return (f"macOS: {OPENVINO_PLUGIN} has wheels for {_WHEELS} only; the PyPI "
                "onnxruntime for macOS has CoreMLExecutionProvider instead")
    if system == "Linux" and machine in ("aarch64", "arm64"):
        return (f"Linux on Arm ({machine}): {OPENVINO_PLUGIN} has wheels for {_WHEELS} only, "
                "and the PyPI onnxruntime for Linux has no provider besides the CPU; a second "
                "provider here takes an ONNX Runtime built from source with one (the Arm "
                "Compute Library, --use_acl, or XNNPACK, --use_xnnpack)")
    return f"{system} on {given}: {OPENVINO_PLUGIN} has wheels for {_WHEELS} only"


def register_openvino() -> PluginStatus:
    """Register the OpenVINO plugin provider with ONNX Runtime, at most once per process.

    Safe to call again (a provider already registered, by this function or by your own
    ``ort.register_execution_provider_library`` call, is not registered twice).

    Returns:
        A :class:`PluginStatus`; where the plugin is not usable, ``reason`` says why in
        one sentence and what it would take.

    Example:
        >>> status = register_openvino()
        >>> status.usable or print(status.reason)  # doctest: +SKIP
    """
    import onnxruntime as ort

    def offered():
        return tuple(sorted({d.device.type.name for d in ort.get_ep_devices()
                             if d.ep_name == OPENVINO}))

    if not hasattr(ort, "register_execution_provider_library"):
        return PluginStatus(OPENVINO, False, reason=(
            f"onnxruntime {ort.__version__} cannot load plugin providers (1.23 or newer can)"))
    if not offered() and not _registered.get(OPENVINO):
        if importlib.util.find_spec(_MODULE) is None:
            wheel = _platform_reason(platform.system(), platform.machine())
            return PluginStatus(OPENVINO, False, reason=wheel or (
                f"{OPENVINO_PLUGIN} is not installed: pip install "
                f"'{OPENVINO_PLUGIN}=={OPENVINO_PLUGIN_PIN}' (make setup installs it)"))
        import onnxruntime_ep_openvino as plugin

        try:
            ort.register_execution_provider_library(_REGISTRATION_NAME, plugin.get_library_path())
        except Exception as error:  # an ORT failure carries only its message
            if "already registered" not in str(error):
                first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
                return PluginStatus(OPENVINO, False, reason=(
                    f"registering the OpenVINO plugin failed ({type(error).__name__}: {first})"))
        _registered[OPENVINO] = True
    devices = offered()
    if devices:
        return PluginStatus(OPENVINO, True, devices)
    return PluginStatus(OPENVINO, True, reason=_no_device_reason(ort.get_ep_devices()))


def _no_device_reason(ep_devices) -> str:
    """Why the registered plugin offers no device: the vendors of this machine's hardware."""
    hardware = sorted({f"{d.device.type.name} by {d.device.vendor or hex(d.device.vendor_id)}"
                       for d in ep_devices})
    intel = any(d.device.vendor_id == _INTEL_VENDOR_ID for d in ep_devices)
    if intel:  # an Intel device the plugin still turned down
        return (f"the OpenVINO plugin offers no device here ({', '.join(hardware)}); "
                "ONNX Runtime's verbose log (ort.set_default_logger_severity(0)) says why")
    return (f"the OpenVINO plugin offers Intel CPUs, GPUs and NPUs only, and this machine has "
            f"none ({', '.join(hardware) or 'no device found'}); on this CPU the openvino "
            "package itself runs the same .onnx files (notebook 04), and an Intel device "
            "would give ONNX Runtime this second provider")


def list_devices() -> list[DeviceInfo]:
    """Every device each registered provider offers here (``ort.get_ep_devices()``).

    Register plugin providers first (:func:`register_openvino`) to see theirs.

    Example:
        >>> any(d.provider == "CPUExecutionProvider" for d in list_devices())
        True
    """
    import onnxruntime as ort

    return [DeviceInfo(d.ep_name, d.device.type.name, d.device.vendor, int(d.device.vendor_id),
                       d.ep_vendor, dict(d.ep_metadata))
            for d in ort.get_ep_devices()]


#: Metadata keys worth a column, in order (the OpenVINO plugin lists a dozen more).
_DETAIL_KEYS = ("ov_device", "ov_meta_device", "FULL_DEVICE_NAME", "OPTIMIZATION_CAPABILITIES",
                "version")


def format_devices(rows: list[DeviceInfo]) -> str:
    """The devices as a fixed-width table: provider, device, vendor, a few metadata."""
    cells = [[r.provider, r.device_type, r.vendor or hex(r.vendor_id),
              "; ".join(f"{k}={r.metadata[k]}" for k in _DETAIL_KEYS if r.metadata.get(k))]
             for r in rows]
    return "\n".join(format_table(["provider", "device", "vendor", "metadata"], cells,
                                  align="<<<<", gap="  ", rule="-"))


def provider_devices(provider: str, device_type: str = "CPU") -> list:
    """The ``OrtEpDevice`` objects of one provider on one kind of device (may be empty)."""
    import onnxruntime as ort

    return [d for d in ort.get_ep_devices()
            if d.ep_name == provider and d.device.type.name == device_type]


def openvino_options(threads: int, precision: str = "f32") -> dict[str, str]:
    """Provider options that pin OpenVINO's precision and threads on its CPU device.

    The plugin ignores ``precision`` and ``num_of_threads`` and reads its ``load_config``:
    a JSON object of OpenVINO properties per OpenVINO device.

    Example:
        >>> openvino_options(2)
        {'load_config': '{"CPU": {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": "2"}}'}
    """
    if precision not in _PRECISIONS:
        raise InvalidArgumentError(f"precision {precision!r} is not one of OpenVINO's CPU "
                                   f"precisions; choose from {list(_PRECISIONS)}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidArgumentError(f"threads must be a whole number of at least 1, not {threads!r}")
    return {"load_config": json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": precision,
                                               "INFERENCE_NUM_THREADS": str(threads)}})}


def describe_second_provider() -> str:
    """One line: does this machine have a real provider besides the CPU, and if not, why.

    Registers the OpenVINO plugin where it is installed (see :func:`register_openvino`).
    """
    import onnxruntime as ort

    status = register_openvino()
    others = sorted({d.ep_name.split(".")[0] + f" on the {d.device.type.name}"
                     for d in ort.get_ep_devices() if d.ep_name != "CPUExecutionProvider"})
    if "CoreMLExecutionProvider" in ort.get_available_providers():
        others.append("CoreMLExecutionProvider (in the PyPI onnxruntime for macOS)")
    if others:
        plugin = f" (plugin {OPENVINO_PLUGIN})" if status.usable else ""
        return f"yes: {', '.join(others)}{plugin}"
    return f"no: {status.reason}"
