"""Which distribution on the index provides an importable module (for adaptive rounds).

Most distributions are named after their top-level module; this table keeps the
ones that are not, and the Windows-only modules no Linux wheel provides (those
are not fetched: ``None``). A module absent from the table is tried under its own
name, and the fetched wheel must really contain it (:func:`wheel_provides`).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

# module → distribution (None: nothing on the index provides it for Linux)
MODULE_DISTRIBUTIONS: dict[str, str | None] = {
    "Crypto": "pycryptodome",
    "Cryptodome": "pycryptodomex",
    "OpenSSL": "pyOpenSSL",
    "PIL": "Pillow",
    "bs4": "beautifulsoup4",
    "cv2": "opencv-python-headless",
    "dateutil": "python-dateutil",
    "discord": "discord.py",
    "discord_webhook": "discord-webhook",
    "dotenv": "python-dotenv",
    "git": "GitPython",
    "google.protobuf": "protobuf",
    "jwt": "PyJWT",
    "magic": "python-magic",
    "nacl": "PyNaCl",
    "pyautogui": "PyAutoGUI",
    "ruamel": "ruamel.yaml",
    "serial": "pyserial",
    "sklearn": "scikit-learn",
    "socks": "PySocks",
    "telebot": "pyTelegramBotAPI",
    "telegram": "python-telegram-bot",
    "websocket": "websocket-client",
    "yaml": "PyYAML",
    "zmq": "pyzmq",
    "Xlib": "python-xlib",
    "usb": "pyusb",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "fitz": "PyMuPDF",
    "skimage": "scikit-image",
    "attr": "attrs",
    "win10toast": None,
    # Windows only: pywin32, comtypes, wmi … have no Linux wheel (emulation is a separate pass)
    "win32api": None,
    "win32con": None,
    "win32crypt": None,
    "win32gui": None,
    "win32process": None,
    "win32clipboard": None,
    "win32file": None,
    "win32com": None,
    "win32event": None,
    "win32security": None,
    "win32service": None,
    "pywintypes": None,
    "pythoncom": None,
    "winreg": None,
    "_winreg": None,
    "winsound": None,
    "msvcrt": None,
    "_winapi": None,
    "wmi": None,
    "comtypes": None,
    "pywinauto": None,
    "wintypes": None,
}
# Standard-library modules of Python 2 a release may still import: nothing to fetch.
_PY2_ONLY = {"urllib2", "urlparse", "httplib", "ConfigParser", "StringIO", "cPickle", "Queue", "commands"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def distribution_for(module: str) -> tuple[str | None, str]:
    """(distribution to fetch or None, why) for a missing top-level *module*."""
    top = module.split(".")[0]
    if module in MODULE_DISTRIBUTIONS or top in MODULE_DISTRIBUTIONS:
        dist = MODULE_DISTRIBUTIONS.get(module, MODULE_DISTRIBUTIONS.get(top))
        return dist, ("no Linux distribution provides it" if dist is None else "known mapping")
    if top in _PY2_ONLY:
        return None, "a Python 2 standard-library module"
    if not _NAME.match(top):
        return None, "not a module name"
    return top, "same name"


def wheel_provides(wheel: Path, module: str) -> bool:
    """Whether *wheel* installs the top-level *module* (top_level.txt or its file list)."""
    top = module.split(".")[0]
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            for name in names:
                if name.endswith(".dist-info/top_level.txt"):
                    tops = zf.read(name).decode("utf-8", "replace").split()
                    if top in tops:
                        return True
    except (OSError, zipfile.BadZipFile, KeyError):
        return False
    for name in names:
        first = name.split("/", 1)[0]
        if first == top or first == f"{top}.py" or (first.startswith(f"{top}.") and first.endswith(".so")):
            return True
    return False
