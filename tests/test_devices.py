"""Tests for course_utils/devices.py: the OpenVINO plugin provider and the device API.

Whether the plugin offers a device depends on the machine (Intel hardware only), so the
questions hold on both kinds: a usable plugin lists its CPU device, an unusable one says why.
The reasons for other platforms are asked of fakes.
"""
import importlib.metadata as metadata
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from course_utils import devices
from course_utils.devices import (OPENVINO, OPENVINO_PLUGIN, OPENVINO_PLUGIN_PIN,
                                  describe_second_provider, format_devices, list_devices,
                                  openvino_options, register_openvino)
from course_utils.install import read_pyproject


def test_pyproject_installs_the_plugin_where_it_has_wheels(root):
    """Is the plugin pinned as devices.py says, only on Linux x86_64 and Windows x64?"""
    from packaging.requirements import Requirement

    lines = [r for r in read_pyproject(root / "pyproject.toml")["project"]["dependencies"]
             if r.startswith(OPENVINO_PLUGIN)]
    assert len(lines) == 1
    requirement = Requirement(lines[0])
    assert str(requirement.specifier) == f"=={OPENVINO_PLUGIN_PIN}"
    where = {(system, machine): requirement.marker.evaluate({"sys_platform": system,
                                                              "platform_machine": machine})
             for system, machine in [("linux", "x86_64"), ("win32", "AMD64"), ("linux", "aarch64"),
                                     ("darwin", "arm64"), ("darwin", "x86_64"), ("win32", "ARM64")]}
    assert [key for key, holds in where.items() if holds] == [("linux", "x86_64"), ("win32", "AMD64")]


def test_the_plugin_and_the_openvino_package_share_one_openvino_release():
    """A process loads one OpenVINO library: do the plugin and the openvino package carry the
    same release (libopenvino.so.NNNN), so that notebook 04 may use both?"""
    try:
        plugin = metadata.distribution(OPENVINO_PLUGIN)
        package = metadata.distribution("openvino")
    except metadata.PackageNotFoundError:
        pytest.skip("the plugin or the openvino package is not installed here")
    if sys.platform != "linux":
        pytest.skip("the library names compared are Linux's")

    def releases(dist):
        return {m.group(1) for f in dist.files or [] if (m := re.search(r"libopenvino\.so\.(\d+)$", str(f)))}

    assert releases(plugin) and releases(plugin) == releases(package)


def test_registering_twice_registers_once():
    """Is a second call a no-op: the same status, and no device listed twice?"""
    first = register_openvino()
    count = sum(d.provider == OPENVINO for d in list_devices())
    assert register_openvino() == first
    assert sum(d.provider == OPENVINO for d in list_devices()) == count


def test_the_plugin_is_usable_here_or_says_why():
    """Does the plugin offer its CPU device here, or give a reason that names what it lacks?"""
    status = register_openvino()
    rows = list_devices()
    assert any(r.provider == "CPUExecutionProvider" and r.device_type == "CPU" for r in rows)
    if status.usable:
        assert "CPU" in status.devices and any(r.provider == OPENVINO for r in rows)
        assert describe_second_provider().startswith(f"yes: {OPENVINO} on the CPU")
    else:
        assert status.reason and describe_second_provider() == f"no: {status.reason}"
    assert format_devices(rows).splitlines()[0].split() == ["provider", "device", "vendor", "metadata"]


def test_a_machine_without_intel_hardware_is_told_so():
    """Registered but without a device on an AMD CPU: does the reason name the vendor, the
    plugin's Intel-only rule, and what runs OpenVINO here instead?"""
    amd_cpu = SimpleNamespace(ep_name="CPUExecutionProvider", device=SimpleNamespace(
        type=SimpleNamespace(name="CPU"), vendor="AMD", vendor_id=0x1022))
    reason = devices._no_device_reason([amd_cpu])
    assert "Intel CPUs, GPUs and NPUs only" in reason and "CPU by AMD" in reason
    assert "openvino package" in reason


@pytest.mark.parametrize("system, machine, expected", [
    ("Linux", "aarch64", "Linux on Arm (aarch64): onnxruntime-ep-openvino has wheels for Linux x86_64 and Windows x64 only"),
    ("Darwin", "arm64", "CoreMLExecutionProvider"),
    ("Windows", "ARM64", "Windows on ARM64"),
    ("Linux", "x86_64", "pip install 'onnxruntime-ep-openvino==1.8.1'"),
])
def test_a_machine_without_the_plugin_gets_the_reason_and_what_it_would_take(
        monkeypatch, system, machine, expected):
    """Plugin absent: Linux on Arm, macOS, Windows on Arm each get their reason; a platform with
    wheels gets the install command?"""
    import importlib.util

    monkeypatch.setattr(devices, "_registered", {})
    monkeypatch.setattr(devices.platform, "system", lambda: system)
    monkeypatch.setattr(devices.platform, "machine", lambda: machine)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == devices._MODULE else real(name, *a))
    fake_ort = SimpleNamespace(register_execution_provider_library=lambda *a: None,
                               get_ep_devices=lambda: [], __version__="1.31.1")
    monkeypatch.setitem(sys.modules, "onnxruntime", fake_ort)
    status = register_openvino()
    assert not status.usable and not status.registered and expected in status.reason


def test_openvino_options_pin_precision_and_threads():
    """Is the precision and thread count in the load_config the plugin reads, and a bad value
    refused with the choices?"""
    config = json.loads(openvino_options(3)["load_config"])
    assert config == {"CPU": {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": "3"}}
    assert json.loads(openvino_options(1, "bf16")["load_config"])["CPU"]["INFERENCE_PRECISION_HINT"] == "bf16"
    with pytest.raises(ValueError, match="f32"):
        openvino_options(2, "fp32")
    with pytest.raises(ValueError, match="at least 1"):
        openvino_options(0)
