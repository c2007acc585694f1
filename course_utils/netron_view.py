"""Netron, the model viewer, served from a notebook or the command line.

Covers: serving Netron's web UI (the page and scripts of the installed ``netron``
package) on ``127.0.0.1`` and a free port for one model file
(:func:`serve_netron`), showing it inline in JupyterLab as an IFrame, one model
or several side by side (:func:`show_netron`), stopping it when asked, at the end
of a ``with`` block or when the kernel exits, and the
``python -m course_utils netron MODEL.onnx [--port P]`` subcommand.
Does not cover: a picture of the graph for places where a browser cannot reach
the kernel (JupyterHub, a remote machine, CI): see :func:`course_utils.graph_drawing.draw_graph`.

Netron's traps, handled here and explained in notebook 03:

* ``netron.serve`` keeps the served model on a class shared by every server in
  the process (two models side by side showed the same graph twice), and
  Netron's page reports usage to an analytics service once its cookie question
  is answered (a question never remembered on ``127.0.0.1``). The servers here
  are the course's own (``netron_page.py``): one model each, no question, no
  reporting, and the browser may connect to nothing but the server.
* ``netron.start`` opens a web browser *on the machine running the kernel*; we
  never do, we show the page in the notebook.
* The UI refuses to work about 180 days after its build date ("Please update to
  the newest version"); :func:`show_netron` says so and what to do.
"""
from __future__ import annotations

import atexit
import errno
import html
import logging
import os
import socket
import threading
import time
import urllib.parse
from pathlib import Path

from . import install
from .errors import CourseError, InvalidArgumentError
from .netron_page import HOST, ModelServer, find_netron_ui
from .options import add_number, path_arg
from .paths import input_file

__all__ = ["serve_netron", "show_netron", "stop_all_netron", "NetronServer", "NetronError"]

logger = logging.getLogger(__name__)

_SERVERS: dict[int, "NetronServer"] = {}  # port -> running server, stopped at exit
_LOCK = threading.Lock()
_ATEXIT_REGISTERED = False


class NetronError(CourseError, RuntimeError):
    """A Netron server that could not start or stop (no free port, a stuck thread)."""


class NetronServer:
    """A running Netron web server for one model file.

    Use it as a context manager, or call :meth:`stop`. Every server still running
    when the Python process (the notebook kernel) exits is stopped then.

    Attributes:
        model: the model file being served.
        port: the TCP port on 127.0.0.1.
    """

    def __init__(self, model: Path, port: int, httpd: ModelServer | None = None) -> None:
        self.model = model
        self.port = port
        self._httpd = httpd
        self._thread: threading.Thread | None = None
        if httpd is not None:
            self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"netron-{port}", daemon=True)
            self._thread.start()

    @property
    def url(self) -> str:
        """The address of Netron's page, e.g. ``http://127.0.0.1:20123/``."""
        return f"http://{HOST}:{self.port}/"

    @property
    def model_url(self) -> str:
        """The address the page downloads the model bytes from."""
        return f"{self.url}data/{urllib.parse.quote(self.model.name)}"

    @property
    def running(self) -> bool:
        """True while the server serves on its port."""
        return self._httpd is not None and self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server and free its port (safe to call twice)."""
        with _LOCK:
            _SERVERS.pop(self.port, None)
            httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()  # returns once serve_forever has returned
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise NetronError(f"Netron on port {self.port} did not stop within {timeout} s; "
                                   "restart the kernel to free the port")

    def __enter__(self) -> "NetronServer":
        return self

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<NetronServer {self.model.name!r} at {self.url} ({state})>"

    def _repr_html_(self) -> str:
        return _frames_html([self], height=500)


def _port_is_free(port: int) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Same option as our server: a port held only by closed connections
    # (TIME_WAIT) counts as free, a listening socket does not.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))  # the OS picks an unused port
        return probe.getsockname()[1]


def serve_netron(path, port: int | None = None) -> NetronServer:
    """Serve a model file to Netron's web UI on 127.0.0.1 and return the server.

    Args:
        path: the model file (``.onnx`` or anything else Netron reads). Files
            next to it (external data) are served too.
        port: the port to use; ``None`` picks a free one. A port already in
            use is replaced by a free one, with a log message.

    Returns:
        A :class:`NetronServer`: ``.url`` to open, ``.stop()`` when done, or
        use it in a ``with`` block.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: ``port`` is not in 1..65535.

    Example:
        >>> with serve_netron("artifacts/resnet18.onnx") as server:  # doctest: +SKIP
        ...     print(server.url)
        http://127.0.0.1:20123/
    """
    global _ATEXIT_REGISTERED
    model = input_file(Path(path).expanduser(), "model file",
                       missing_hint="export the model first (the export step of notebook 02, or "
                                    "python -m course_utils export)").resolve()
    if port is not None and not 0 < int(port) < 65536:
        raise InvalidArgumentError(f"port must be between 1 and 65535, got {port}; or leave it out "
                         "to get a free one")
    if port is not None and not _port_is_free(int(port)):
        chosen = _free_port()
        logger.warning("port %s is already in use; serving Netron on %s instead", port, chosen)
        port = chosen
    port = int(port) if port is not None else _free_port()
    find_netron_ui()  # fails here, with one clear line, when netron is missing
    for _ in range(3):  # another program may grab the port between check and bind
        try:
            server = NetronServer(model, port, ModelServer(port, model))
            break
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EPERM):
                raise NetronError(f"port {port} needs administrator rights on this machine; "
                                  "choose one above 1023, or leave the port out to get a free "
                                  "one") from None
            if error.errno != errno.EADDRINUSE:
                raise NetronError(f"could not serve Netron on 127.0.0.1:{port} ({error}); leave "
                                  "the port out to get a free one") from None
            port = _free_port()
    else:
        raise NetronError("could not find a free port for Netron after 3 tries; "
                           "pass port=... with a port you know is free")
    with _LOCK:
        _SERVERS[port] = server
        if not _ATEXIT_REGISTERED:
            atexit.register(stop_all_netron)
            _ATEXIT_REGISTERED = True
    return server


def stop_all_netron() -> int:
    """Stop every Netron server this process started; return how many were running."""
    with _LOCK:
        servers = list(_SERVERS.values())
    for server in servers:
        server.stop()
    return len(servers)


def _hub_notice() -> str | None:
    if not os.environ.get("JUPYTERHUB_USER"):
        return None
    return ("This kernel runs on JupyterHub: your browser cannot reach Netron on the hub's "
            "127.0.0.1, so the frame stays empty. Use the static picture (draw_graph), or "
            "download the .onnx file and drop it on https://netron.app.")


def _age_notice() -> str | None:
    import datetime as dt

    built = install.netron_build_date()
    if built is None:
        return None
    age, lifetime = (dt.date.today() - built).days, install.NETRON_UI_LIFETIME_DAYS
    if age <= lifetime:
        return None
    return (f"This Netron UI was built {age} days ago; after {lifetime} days it only "
            "shows 'Please update to the newest version'. Run `pip install --upgrade netron` "
            "and restart the kernel, or drop the .onnx file on https://netron.app (the file stays "
            "in your browser), or use the static picture (draw_graph).")


_HELP = ("An empty or refused frame means your browser cannot reach this kernel's machine "
         "(JupyterHub, a remote machine): use the static picture instead, or forward {what} "
         "({forwards}) and open {urls}. These pages send "
         "nothing off this machine: Netron's usage reporting is switched off.")


def _help(servers: list[NetronServer]) -> str:
    """The forwarding help, naming every frame's port (one ssh -L per server)."""
    forwards = " ".join(f"-L {s.port}:127.0.0.1:{s.port}" for s in servers)
    return _HELP.format(what="the port" if len(servers) == 1 else f"all {len(servers)} ports",
                        forwards=f"ssh {forwards} you@host",
                        urls=" and ".join(s.url for s in servers))


def _frames_html(servers: list[NetronServer], height: int) -> str:
    width = f"{100 / len(servers):.0f}%"
    frames = "".join(
        f'<div style="width:{width};padding:2px"><div><code>{html.escape(s.model.name)}</code> '
        f'<a href="{s.url}" target="_blank">open in a new tab</a></div>'
        f'<iframe src="{s.url}" style="width:100%;height:{height}px;border:1px solid #ccc">'
        f"</iframe></div>" for s in servers)
    notes = [f"<b>{html.escape(n)}</b>" for n in (_age_notice(), _hub_notice()) if n]
    notes.append(_help(servers))
    return (f'<div style="display:flex">{frames}</div>'
            f'<p style="font-size:small">{"<br>".join(notes)}</p>')


class _NetronFrames:
    """What :func:`show_netron` returns: IFrames in JupyterLab, plain text elsewhere."""

    def __init__(self, servers: list[NetronServer], height: int) -> None:
        self.servers, self.height = servers, height

    def _repr_html_(self) -> str:
        return _frames_html(self.servers, self.height)

    def __repr__(self) -> str:
        lines = [f"Netron: {s.model.name} at {s.url}" for s in self.servers]
        return "\n".join(lines + [n for n in (_age_notice(), _hub_notice()) if n])


def show_netron(*models, height: int = 600) -> _NetronFrames:
    """Show one or more models in Netron, side by side, inline in a notebook.

    Args:
        *models: model paths (a server is started for each) or running
            :class:`NetronServer` objects.
        height: the height of the frames in pixels.

    Returns:
        An object that JupyterLab displays as IFrames (and a terminal as the
        URLs). Its ``servers`` attribute holds the servers, to ``stop()`` later.

    Example:
        >>> show_netron("artifacts/resnet18.onnx", "artifacts/resnet18.extended.onnx")  # doctest: +SKIP
    """
    if not models:
        raise TypeError("show_netron() needs at least one model path or NetronServer")
    servers = [m if isinstance(m, NetronServer) else serve_netron(m) for m in models]
    return _NetronFrames(servers, height)


def _run_cli(args) -> int:
    import webbrowser

    with serve_netron(args.model, port=args.port) as server:
        print(f"Netron is serving {server.model.name} at {server.url} (Ctrl+C stops it)", flush=True)
        notice = _age_notice()
        if notice:
            print(notice, flush=True)
        if args.browse:
            webbrowser.open(server.url)
        try:
            while server.running:
                time.sleep(0.2)
        except KeyboardInterrupt:
            print("stopped", flush=True)
    return 0


def add_cli(subparsers) -> None:
    """Register ``netron``."""
    parser = subparsers.add_parser(
        "netron", help="view a model in Netron (served on 127.0.0.1 until Ctrl+C)")
    parser.add_argument("model", type=path_arg("MODEL"),
                        help="the model file, e.g. artifacts/resnet18.onnx")
    add_number(parser, "--port", low=1, high=65535,
               help="port to serve on (default: a free one; a busy one is replaced)")
    parser.add_argument("--browse", action="store_true",
                        help="also open the page in this machine's web browser")
    parser.set_defaults(func=_run_cli)
