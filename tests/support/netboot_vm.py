"""What the QEMU network-boot test boots: Debian's kernel, a busybox initrd built here, an iPXE script, the VM command.

``scripts/bootstrap`` installs ``qemu-system-x86``, ``ipxe-qemu`` and ``busybox-static`` and unpacks Debian's
kernel package into ``.flasher-cache/netboot/linux/`` (``vmlinuz`` and the ``e1000`` module: QEMU's default NIC;
Debian builds ``CONFIG_E1000=m``, so the initrd carries the module, which depends on nothing). :func:`why_not`
says why the test cannot run here (missing pieces), so that it is skipped naming them.

The initrd (:func:`build_initrd`, a ``newc`` cpio written in Python) holds busybox, the module and ``/init``:
mount ``/proc``, ``/sys``, ``/dev``; load ``e1000``; configure ``eth0`` for QEMU's user-mode network (10.0.2.15/24,
gateway 10.0.2.2 = the host's loopback); read ``flasher.callback=`` from ``/proc/cmdline``; POST
``hostname``/``kernel`` there with busybox ``wget`` (a few tries); power off. The serial console goes to a log file.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
#: Where scripts/bootstrap unpacks the kernel (override: FLASHER_NETBOOT_KERNEL_DIR).
KERNEL_DIR: Final = Path(os.environ.get("FLASHER_NETBOOT_KERNEL_DIR", ROOT / ".flasher-cache" / "netboot" / "linux"))
QEMU: Final = "qemu-system-x86_64"
IPXE_ROM: Final = Path("/usr/lib/ipxe/qemu/efi-e1000.rom")
BUSYBOX_CANDIDATES: Final = (Path("/bin/busybox"), Path("/usr/bin/busybox"))

INIT: Final = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "flasher-initrd: up, kernel $(uname -r)"
insmod /e1000.ko
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 1; done
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
callback=$(sed -n 's/.*flasher\\.callback=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
echo "flasher-initrd: calling back $callback"
for i in 1 2 3 4 5 6 7 8 9 10; do
    if wget -q -O /dev/null --post-data "hostname=netboot-vm&kernel=$(uname -r)" "$callback"; then
        echo "flasher-initrd: called back"
        break
    fi
    sleep 1
done
poweroff -f
"""


def busybox() -> Path | None:
    """A statically linked busybox (busybox-static), or ``None``."""
    for path in BUSYBOX_CANDIDATES:
        if path.is_file() and _static(path):
            return path
    return None


def _static(path: Path) -> bool:
    # A static ELF has no PT_INTERP program header: look for the interpreter path's usual text.
    data = path.read_bytes()[: 4096 * 4]
    return data.startswith(b"\x7fELF") and b"/lib64/ld-linux" not in data and b"/lib/ld-linux" not in data


def why_not() -> str | None:
    """Why a QEMU network boot cannot run on this machine, or ``None`` when it can."""
    missing = []
    if shutil.which(QEMU) is None:
        missing.append(f"{QEMU} (Debian package qemu-system-x86)")
    if not IPXE_ROM.is_file():
        missing.append(f"{IPXE_ROM} (Debian package ipxe-qemu)")
    if busybox() is None:
        missing.append("a static busybox (Debian package busybox-static)")
    for name in ("vmlinuz", "e1000.ko"):
        if not (KERNEL_DIR / name).is_file():
            missing.append(f"{KERNEL_DIR / name} (scripts/bootstrap unpacks Debian's kernel package there)")
    return f"cannot boot a VM here: missing {', '.join(missing)}" if missing else None


def _cpio_entry(name: str, mode: int, data: bytes = b"", ino: int = 1) -> bytes:
    """One ``newc`` cpio record (header, name padded to 4 bytes, data padded to 4 bytes)."""
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
    header = b"070701" + b"".join(f"{value:08x}".encode() for value in fields)
    out = header + encoded
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def build_initrd(path: Path) -> Path:
    """Write the busybox initrd (uncompressed ``newc`` cpio) to ``path``."""
    box = busybox()
    if box is None:
        raise FileNotFoundError("no static busybox (Debian package busybox-static)")
    directory = stat.S_IFDIR | 0o755
    entries = [
        _cpio_entry("bin", directory, ino=1),
        _cpio_entry("proc", directory, ino=2),
        _cpio_entry("sys", directory, ino=3),
        _cpio_entry("dev", directory, ino=4),
        _cpio_entry("bin/busybox", stat.S_IFREG | 0o755, box.read_bytes(), ino=5),
        _cpio_entry("e1000.ko", stat.S_IFREG | 0o644, (KERNEL_DIR / "e1000.ko").read_bytes(), ino=6),
        _cpio_entry("init", stat.S_IFREG | 0o755, INIT.encode(), ino=7),
        _cpio_entry("TRAILER!!!", 0, ino=0),
    ]
    path.write_bytes(b"".join(entries))
    return path


def ipxe_script(netboot_port: int) -> str:
    """The iPXE script QEMU's TFTP serves: chain to flasher's iPXE endpoint with the NIC's MAC."""
    return f"#!ipxe\necho flasher test: chaining to flasher\nchain http://10.0.2.2:{netboot_port}/v1/ipxe?mac=${{net0/mac}}\n"


def vm_command(directory: Path, mac: str, log: Path) -> list[str]:
    """A shell wrapper (argv) the simulated BMC runs as its host: a QEMU VM (TCG, 256 MiB, one e1000 NIC with
    ``mac`` on user-mode networking whose TFTP serves ``directory``) that network-boots when the BMC's boot
    override says Pxe (``FLASHER_SANDBOX_BOOT=pxe``) and otherwise has nothing to boot (it idles)."""
    script = directory / "host.sh"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$FLASHER_SANDBOX_BOOT" != pxe ]; then exec sleep 3600; fi\n'
        f"exec {QEMU} -accel tcg -m 256 -display none -nodefaults -no-reboot "
        f"-serial file:{log} "
        f"-netdev user,id=n0,tftp={directory},bootfile=boot.ipxe "
        f"-device e1000,netdev=n0,mac={mac},romfile={IPXE_ROM} -boot n\n"
    )
    script.chmod(0o755)
    return [str(script)]
