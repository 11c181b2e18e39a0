#!/usr/bin/env python3
"""Let TorchSharp's libLibTorchSharp.so load against an older libstdc++ when that is provably safe.

TorchSharp 0.107.0's libLibTorchSharp.so was linked against GCC 13's libstdc++ and lists GLIBCXX_3.4.32 among the
versions it needs (.gnu.version_r); Debian 12's libstdc++.so.6 defines up to GLIBCXX_3.4.30, so the dynamic loader
refuses the library. This script patches one copy of the library (the benchmark's build output, never the NuGet cache):

1. It reads the version definitions (.gnu.version_d) of the system libstdc++ given as --against.
2. For each version the library needs from libstdc++.so.6 that the system library does not define, it lists the dynamic
   symbols bound to that version (.gnu.version) and the relocations (.rela.dyn, .rela.plt) that refer to them.
3. If any such symbol is referenced by a relocation, the loader would have to resolve it at run time: it stops with an
   error and patches nothing.
4. Otherwise the symbols are never resolved, and the only effect of the requirement is the loader's version check; the
   script sets VER_FLG_WEAK on that requirement, which glibc's loader treats as optional ("weak version not found"
   is then not an error). Nothing else in the file changes: same size, same symbols, same code.

For GLIBCXX_3.4.32 the one symbol is std::ios_base_library_init() (_ZSt21ios_base_library_initv): GCC 13's <iostream>
emits a bare reference to it (no call, no relocation) so that the linker pulls in libstdc++'s initialiser of the eight
standard stream objects. The script also checks that this cannot matter: either the library uses none of the standard
stream objects, or a library it needs (libc10.so, libtorch_cpu.so) constructs std::ios_base::Init itself, which runs
before libLibTorchSharp's own initialisers.

Pure standard-library Python; ELF64 little-endian only. Running it again on a patched file reports that and succeeds.
"""
import argparse
import os
import struct
import sys

SHT_DYNSYM, SHT_DYNAMIC, SHT_RELA, SHT_REL = 11, 6, 4, 9
SHT_GNU_VERDEF, SHT_GNU_VERNEED, SHT_GNU_VERSYM = 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
VER_FLG_WEAK = 0x2
DT_NEEDED = 1
STANDARD_STREAMS = {"_ZSt4cout", "_ZSt4cerr", "_ZSt4clog", "_ZSt3cin", "_ZSt5wcout", "_ZSt5wcerr", "_ZSt5wclog", "_ZSt4wcin"}
IOS_BASE_INIT = "_ZNSt8ios_base4InitC1Ev"
IOS_BASE_LIBRARY_INIT = "_ZSt21ios_base_library_initv"


class Elf:
    """The sections of an ELF64 little-endian file that symbol versioning uses."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = bytearray(f.read())
        if self.data[:4] != b"\x7fELF" or self.data[4] != 2 or self.data[5] != 1:
            raise SystemExit(f"{path}: not an ELF64 little-endian file")
        shoff, = struct.unpack_from("<Q", self.data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", self.data, 0x3A)
        # (type, offset, size, link, entsize) of each section header
        self.sections = []
        for i in range(shnum):
            _, kind, _, _, offset, size, link, _, _, entsize = struct.unpack_from("<IIQQQQIIQQ", self.data, shoff + i * shentsize)
            self.sections.append((kind, offset, size, link, entsize))

    def index_of(self, kind):
        found = [i for i, s in enumerate(self.sections) if s[0] == kind]
        return found[0] if found else None

    def string(self, section_index, offset):
        start = self.sections[section_index][1] + offset
        return self.data[start:self.data.index(b"\0", start)].decode()

    def dynamic_symbols(self):
        """[(name, defined)] in .dynsym order (index 0 is the null symbol)."""
        i = self.index_of(SHT_DYNSYM)
        _, offset, size, link, entsize = self.sections[i]
        symbols = []
        for at in range(offset, offset + size, entsize):
            name, _, _, shndx = struct.unpack_from("<IBBH", self.data, at)
            symbols.append((self.string(link, name), shndx != 0))
        return symbols

    def version_indices(self):
        _, offset, size, _, _ = self.sections[self.index_of(SHT_GNU_VERSYM)]
        return [v & 0x7FFF for v in struct.unpack_from(f"<{size // 2}H", self.data, offset)]

    def defined_versions(self):
        """Version names in .gnu.version_d."""
        i = self.index_of(SHT_GNU_VERDEF)
        if i is None:
            return set()
        _, at, _, link, _ = self.sections[i]
        names = set()
        while True:
            _, _, _, count, _, aux, following = struct.unpack_from("<HHHHIII", self.data, at)
            if count:
                name, = struct.unpack_from("<I", self.data, at + aux)
                names.add(self.string(link, name))
            if not following:
                return names
            at += following

    def needed_versions(self):
        """[(file, version, flags, version index, offset of the Vernaux entry)] from .gnu.version_r."""
        i = self.index_of(SHT_GNU_VERNEED)
        _, at, _, link, _ = self.sections[i]
        needs = []
        while True:
            _, count, file_name, aux, following = struct.unpack_from("<HHIII", self.data, at)
            entry = at + aux
            for _ in range(count):
                _, flags, other, name, next_aux = struct.unpack_from("<IHHII", self.data, entry)
                needs.append((self.string(link, file_name), self.string(link, name), flags, other, entry))
                entry += next_aux
            if not following:
                return needs
            at += following

    def relocated_symbols(self):
        """Indices of .dynsym symbols that some relocation refers to."""
        dynsym = self.index_of(SHT_DYNSYM)
        referenced = set()
        for kind, offset, size, link, entsize in self.sections:
            if kind in (SHT_RELA, SHT_REL) and link == dynsym:
                for at in range(offset, offset + size, entsize):
                    info, = struct.unpack_from("<Q", self.data, at + 8)
                    referenced.add(info >> 32)
        return referenced

    def needed_libraries(self):
        i = self.index_of(SHT_DYNAMIC)
        _, offset, size, link, _ = self.sections[i]
        names = []
        for at in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", self.data, at)
            if tag == DT_NEEDED:
                names.append(self.string(link, value))
        return names


def check_stream_initialisation(library):
    """Why a missing std::ios_base_library_init() cannot leave the standard streams uninitialised, or None."""
    imported = {name for name, defined in library.dynamic_symbols() if not defined}
    if not imported & STANDARD_STREAMS:
        return "the library uses none of the eight standard stream objects"
    folder = os.path.dirname(os.path.abspath(library.path))
    for needed in library.needed_libraries():
        candidate = os.path.join(folder, needed)
        if os.path.exists(candidate) and any(name == IOS_BASE_INIT for name, _ in Elf(candidate).dynamic_symbols()):
            return f"{needed}, loaded and initialised first, constructs std::ios_base::Init"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("library", help="the copy of libLibTorchSharp.so to patch in place")
    parser.add_argument("--against", required=True, help="the libstdc++.so.6 the dynamic loader will use")
    parser.add_argument("--check", action="store_true", help="report only; exit 1 when a patch would be needed")
    args = parser.parse_args()

    library = Elf(args.library)
    available = Elf(os.path.realpath(args.against)).defined_versions()
    symbols = library.dynamic_symbols()
    indices = library.version_indices()
    relocated = library.relocated_symbols()
    missing = [n for n in library.needed_versions() if n[0] == "libstdc++.so.6" and n[1] not in available]
    if not missing:
        print(f"{args.library}: every libstdc++ version it needs is defined by {args.against}; nothing to do")
        return 0

    patches = []
    for _, version, flags, index, entry in missing:
        bound = [(s, name) for s, (name, defined) in enumerate(symbols) if indices[s] == index]
        names = ", ".join(name for _, name in bound) or "no symbol"
        used = [name for s, name in bound if s in relocated]
        if used:
            print(f"error: {version} (not in {args.against}) binds {', '.join(used)}, which relocations refer to: the loader "
                  f"would have to resolve them, so relaxing the requirement is not safe. Use a libstdc++ that defines {version}.",
                  file=sys.stderr)
            return 2
        if any(name == IOS_BASE_LIBRARY_INIT for _, name in bound):
            reason = check_stream_initialisation(library)
            if reason is None:
                print(f"error: {IOS_BASE_LIBRARY_INIT} is bound to {version}, the library uses the standard streams and no "
                      "library it needs constructs std::ios_base::Init: they could be used uninitialised.", file=sys.stderr)
                return 2
            names += f" (safe without it: {reason})"
        if flags & VER_FLG_WEAK:
            print(f"{version}: already weak ({names})")
            continue
        print(f"{version}: not defined by {args.against}; bound symbols: {names}; no relocation refers to them")
        patches.append((version, flags, entry))

    if not patches:
        return 0
    if args.check:
        print("a patch is needed (--check: file left unchanged)")
        return 1
    for version, flags, entry in patches:
        struct.pack_into("<H", library.data, entry + 4, flags | VER_FLG_WEAK)
        print(f"{version}: marked VER_FLG_WEAK in .gnu.version_r")
    with open(args.library, "r+b") as f:
        f.write(library.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
