"""Static files and compression: what keeps a page light on the wire.

Every file of the app's ``static`` folder and of each blueprint's (FAB's ``appbuilder.static``)
is copied once into ``<instance>/static-build/`` under a name carrying a hash of its content
(``css/portal.3f2a1b9c0d4e.css``), with brotli and gzip copies beside it. ``url_for`` gives that
name, so a page names exactly the file it was rendered with and the browser keeps it a year
without asking again (``immutable``); a changed file gets a new name. WhiteNoise serves the
files before Flask sees the request, picking the copy the browser accepts; the plain names
still answer, cached for a minute only. Flask-Compress compresses the pages and JSON answers.

The build is content-addressed: a file already built is never built again, whichever process
(gunicorn worker) got there first, and each file appears at once whole (written aside, then
renamed). Outside production a changed or new file is noticed when a page names it.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from posixpath import basename, dirname, join, normpath

import brotli
from flask import Flask
from flask_compress import Compress
from werkzeug.security import safe_join
from whitenoise import WhiteNoise
from whitenoise.compress import Compressor

YEAR = 31_536_000
#: Cache lifetime of a file asked for by its plain name (a bookmark, a hand-written link).
SHORT_MAX_AGE = 60
HASH_LENGTH = 12
BUILD_FOLDER = "static-build"
#: Brotli's best quality (11) costs about a second a megabyte, and FAB ships six megabytes
#: (Swagger UI, source maps, a dozen Bootstrap themes): files up to this size (the portal's
#: own CSS and JS) get it, larger ones quality 7, 30 times faster and about 10% larger, so
#: that a first start stays near a second.
BEST_QUALITY_BELOW = 32_000
LARGE_FILE_QUALITY = 7
#: A compressed copy larger than this share of the file is not kept.
WORTHWHILE = 0.95
COMPRESS_SETTINGS = {
    "COMPRESS_MIMETYPES": ["text/html", "text/css", "text/javascript", "application/javascript",
                           "application/json", "application/manifest+json", "image/svg+xml"],
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    "COMPRESS_BR_LEVEL": 4,  # a page is compressed on every request: fast, still smaller
    "COMPRESS_LEVEL": 6,
    # Below about a kilobyte the saving is a few hundred bytes of one packet.
    "COMPRESS_MIN_SIZE": 1024,
    # Files and streamed exports go out as they are: no Range or Content-Length lost.
    "COMPRESS_STREAMS": False,
}
COMPRESSOR = Compressor(quiet=True)
CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')\s]+)\1\s*\)""")


def hashed_name(name: str, data: bytes) -> str:
    """``css/portal.css`` -> ``css/portal.<hash>.css``: the hash before the last extension,
    so that the type of the file stays visible to anyone (and to WhiteNoise)."""
    digest = hashlib.sha256(data).hexdigest()[:HASH_LENGTH]
    head, dot, extension = name.rpartition(".")
    if not dot or "/" in extension or not basename(head):
        return f"{name}.{digest}"
    return f"{head}.{digest}.{extension}"


def rewrite_css(name: str, data: bytes, names: dict[str, str]) -> bytes:
    """Point a stylesheet's ``url(...)`` at the hashed names of its fonts and images, so that
    they are cached for a year too. A hashed file sits in the folder of its plain one, so a
    relative URL keeps its folders and changes only its last part."""
    folder = dirname(name)

    def swap(match: re.Match) -> str:
        quote, target = match.group(1), match.group(2)
        if target.startswith(("data:", "#", "/")) or "://" in target:
            return match.group(0)
        path, suffix = re.match(r"([^?#]*)(.*)", target).groups()
        built = names.get(normpath(join(folder, path)))
        if built is None:
            return match.group(0)
        relative = path[: len(path) - len(basename(path))] + basename(built)
        return f"url({quote}{relative}{suffix}{quote})"

    text = data.decode("utf-8", "surrogateescape")
    return CSS_URL.sub(swap, text).encode("utf-8", "surrogateescape")


def compressed_copies(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """The ``.br`` and ``.gz`` copies worth keeping (none of a PNG, a font, a tiny file)."""
    if not COMPRESSOR.should_compress(name) or not data:
        return []
    copies = []
    quality = 11 if len(data) < BEST_QUALITY_BELOW else LARGE_FILE_QUALITY
    packed = brotli.compress(data, quality=quality)
    if len(packed) <= WORTHWHILE * len(data):
        copies.append((".br", packed))
        packed = COMPRESSOR.compress_gzip(data)
        if len(packed) <= WORTHWHILE * len(data):
            copies.append((".gz", packed))
    return copies


def write_whole(path: Path, data: bytes) -> None:
    """Write beside, then rename: a reader (another worker) sees the whole file or none."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".building-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class StaticFiles(WhiteNoise):
    """WhiteNoise with the portal's headers: a year and ``immutable`` for hashed names only,
    and the security headers Flask's answers carry (CSP, nosniff...), which a file served
    here would otherwise lack, never passing through Flask."""

    def __init__(self, application, security_headers: dict[str, str]):
        self.immutable_urls: set[str] = set()
        self.security_headers = security_headers
        super().__init__(application, max_age=SHORT_MAX_AGE, allow_all_origins=False,
                         mimetypes={".webmanifest": "application/manifest+json"},
                         add_headers_function=self.add_security_headers)

    def add_cache_headers(self, headers, path, url):
        if url in self.immutable_urls:
            headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        else:
            headers["Cache-Control"] = f"public, max-age={self.max_age}"

    def add_security_headers(self, headers, path, url):
        for name, value in self.security_headers.items():
            headers[name] = value


@dataclass
class Folder:
    """One static folder: its files' hashed names, built and registered with the server."""

    root: Path
    prefix: str  # the URL before the file name: "/static/"
    build: Path
    server: StaticFiles
    watch: bool
    names: dict[str, str] = field(default_factory=dict)
    stamps: dict[str, tuple[int, int]] = field(default_factory=dict)

    def build_all(self) -> None:
        """Every file, stylesheets last: they name the others' hashed names."""
        files = sorted(self._files(), key=lambda name: (name.endswith(".css"), name))
        for name in files:
            self._add(name)

    def url_name(self, name: str) -> str:
        """The name ``url_for`` puts in the URL; outside production, rebuilt if changed."""
        if self.watch:
            self._refresh(name)
        return self.names.get(name, name)

    def _files(self):
        for directory, folders, files in os.walk(self.root):
            folders[:] = [f for f in folders if not f.startswith(".")]
            for file in files:
                if not file.startswith("."):
                    yield Path(directory, file).relative_to(self.root).as_posix()

    def _refresh(self, name: str) -> None:
        path = safe_join(str(self.root), name)
        if path is None or not os.path.isfile(path) or basename(name).startswith("."):
            return
        status = os.stat(path)
        if self.stamps.get(name) != (status.st_mtime_ns, status.st_size):
            self._add(name)

    def _add(self, name: str) -> None:
        source = self.root / name
        status = source.stat()
        data = source.read_bytes()
        if name.endswith(".css"):
            data = rewrite_css(name, data, self.names)
        hashed = hashed_name(name, data)
        target = self.build / hashed
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            for suffix, packed in compressed_copies(name, data):
                write_whole(Path(f"{target}{suffix}"), packed)
            write_whole(target, data)  # last: its presence says the copies are there
        self.server.immutable_urls.add(self.prefix + hashed)
        self.server.add_file_to_dictionary(self.prefix + hashed, str(target))
        self.server.add_file_to_dictionary(self.prefix + name, str(target))
        self.names[name] = hashed
        self.stamps[name] = (status.st_mtime_ns, status.st_size)


def static_folders(app: Flask):
    """(endpoint, folder, URL prefix) of the app's static files and of each blueprint's."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            folder = app.static_folder
        elif rule.endpoint.endswith(".static"):
            blueprint = app.blueprints.get(rule.endpoint.removesuffix(".static"))
            folder = blueprint.static_folder if blueprint is not None else None
        else:
            continue
        if folder and os.path.isdir(folder) and rule.rule.endswith("<path:filename>"):
            yield rule.endpoint, Path(folder), rule.rule.removesuffix("<path:filename>")


def security_headers(app: Flask, url: str) -> dict[str, str]:
    """The headers Talisman (app/headers.py) gives Flask's own answer for a static file, so
    the policy is written once: no nonce (a file has no inline script), and no HSTS (which
    the pages send)."""
    talisman = app.extensions.get("talisman")
    if talisman is None:
        return {}
    response = app.response_class()
    with app.test_request_context(url):
        talisman._set_response_headers(response)
    return {name: value for name, value in response.headers.items()
            if name not in ("Content-Type", "Content-Length")}


def init_app(app: Flask) -> None:
    """Compress answers, build the static folders and serve them: call after every
    blueprint is registered (FAB's included) and after app/headers.py."""
    for key, value in COMPRESS_SETTINGS.items():
        app.config.setdefault(key, value)
    Compress(app)
    found = list(static_folders(app))
    headers = security_headers(app, found[0][2] + "file") if found else {}
    server = StaticFiles(app.wsgi_app, headers)
    watch = bool(app.debug or not app.config.get("PRODUCTION"))
    build = Path(app.instance_path) / BUILD_FOLDER
    folders: dict[str, Folder] = {}
    build.mkdir(parents=True, exist_ok=True)
    with open(build / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker builds; the others then find it built
        for endpoint, root, prefix in found:
            folders[endpoint] = Folder(root, prefix, build / endpoint, server, watch)
            folders[endpoint].build_all()
    app.wsgi_app = server
    app.extensions["assets"] = folders

    @app.url_defaults
    def hashed_filename(endpoint: str, values: dict) -> None:
        folder = folders.get(endpoint)
        if folder is not None and isinstance(values.get("filename"), str):
            values["filename"] = folder.url_name(values["filename"])
