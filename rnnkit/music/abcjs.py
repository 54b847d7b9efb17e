"""abcjs (MIT licence, Paul Rosen and Gregory Dyke), the ABC renderer of `rnnkit music serve`.

rnnkit does not ship abcjs's code; it is installed from the npm registry when the environment is
built (`make test` runs `python -m rnnkit.music.abcjs`), checked against the registry's published
sha512 of the release, and served by the app from the environment, so the page needs no network
and no CDN. Only the built file and its licence are kept:

    <sys.prefix>/share/rnnkit/abcjs/abcjs-basic-min.js
    <sys.prefix>/share/rnnkit/abcjs/LICENSE.md
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

from ..errors import UsageError

VERSION = "6.7.2"
TARBALL = f"https://registry.npmjs.org/abcjs/-/abcjs-{VERSION}.tgz"
# the registry's "dist.integrity" of that release: the tarball is refused if it differs
SHA512 = "cHCyf8j0hAcxTuwZ9l2QznaSlLK1TD2s5oVw6Ig8Kfss6VfJKoNJ1kAzMBwa6DDWeyNl2JH7mN/U+MJ8MYbC5g=="
MEMBERS = {"package/dist/abcjs-basic-min.js": "abcjs-basic-min.js", "package/LICENSE.md": "LICENSE.md"}
MAX_TARBALL_BYTES = 20 * 1024 * 1024
INSTALL_HINT = "python -m rnnkit.music.abcjs"


def default_dir() -> Path:
    return Path(sys.prefix) / "share" / "rnnkit" / "abcjs"


def read(folder: str | Path | None = None) -> str:
    """The abcjs script, or a UsageError that says how to install it."""
    path = Path(folder or default_dir()) / "abcjs-basic-min.js"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise UsageError(f"abcjs, the notation renderer of the page, is not installed at {path.parent}: run "
                         f"`{INSTALL_HINT}` (downloads abcjs {VERSION} from the npm registry) or give --abcjs DIR"
                         ) from None
    if "ABCJS" not in text[:200_000]:
        raise UsageError(f"{path} is not the abcjs script; reinstall it with `{INSTALL_HINT}`")
    return text


def unpack(tarball: bytes, folder: Path) -> list[Path]:
    """Check `tarball` against the pinned digest and write the kept members into `folder`."""
    digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode("ascii")
    if digest != SHA512:
        raise UsageError(f"the abcjs {VERSION} download does not match the registry's sha512; nothing was installed")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member, name in MEMBERS.items():
            source = archive.extractfile(member)  # only named regular files are read: no paths from the archive
            if source is None:
                raise UsageError(f"the abcjs {VERSION} package has no {member}")
            (folder / name).write_bytes(source.read())
            written.append(folder / name)
    return written


def install(folder: str | Path | None = None) -> list[Path]:
    """Download the pinned release from the npm registry and keep its built file and licence."""
    try:
        with urllib.request.urlopen(TARBALL, timeout=60) as response:
            tarball = response.read(MAX_TARBALL_BYTES + 1)
    except OSError as e:
        raise UsageError(f"cannot download abcjs {VERSION} from {TARBALL} ({e}); `rnnkit music serve` needs it") from None
    if len(tarball) > MAX_TARBALL_BYTES:
        raise UsageError(f"{TARBALL} is larger than expected; nothing was installed")
    return unpack(tarball, Path(folder or default_dir()))


def main() -> int:
    folder = default_dir()
    if (folder / "abcjs-basic-min.js").is_file() and "--force" not in sys.argv[1:]:
        return 0
    try:
        paths = install(folder)
    except UsageError as e:
        print(f"rnnkit: {e}", file=sys.stderr)
        return 2
    print(f"installed abcjs {VERSION} (MIT licence) in {paths[0].parent}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
