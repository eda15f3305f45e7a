#!/usr/bin/python3
"""Builds an offline Go module proxy (GOPROXY=file://DIR) from Debian's Go sources.

No public module proxy is reachable here, and Debian ships Go libraries as a
GOPATH tree under /usr/share/gocode. This script walks the module graph from
the given go.mod files and writes, for every module@version the graph names:

  DIR/<module>/@v/<version>.mod   the module's go.mod
  DIR/<module>/@v/<version>.info  {"Version": ...}
  DIR/<module>/@v/<version>.zip   the module's files (only for modules Debian has)
  DIR/<module>/@v/list

A module Debian ships is served from its one Debian tree at every version the
graph asks for (the build sees Debian's code, whatever the version label).
Zips are written only for the modules the root (and local) go.mod files
require, which with Go >= 1.17 is every module a build imports from; the rest
of the graph gets go.mod files only (a module Debian lacks gets one without
requirements), which is enough for version selection and fails loudly if a
build really imports it.
Hashes therefore differ from the public modules': use it with GOSUMDB=off and
never commit the go.sum it produces.

  debian_goproxy.py OUT_DIR ROOT_GO_MOD [LOCAL_MODULE=DIR@VERSION ...]

LOCAL_MODULE=DIR@VERSION also serves the module in DIR (e.g. our own
clients/go) at VERSION, so a program outside the repository can require it.
"""

import json
import os
import re
import sys
import zipfile

GOCODE = "/usr/share/gocode/src"


def escape(path):
    """Module path as the proxy protocol spells it: uppercase as !lowercase."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def requirements(go_mod_text):
    """(module, version) pairs in a go.mod's require directives."""
    found = []
    in_block = False
    for raw in go_mod_text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line == ")":
                in_block = False
            elif line:
                found.append(tuple(line.split()[:2]))
        elif line.startswith("require"):
            rest = line[len("require"):].strip()
            if rest == "(":
                in_block = True
            elif rest:
                found.append(tuple(rest.split()[:2]))
    return found


def module_files(root):
    """Files of the module rooted at root, excluding nested modules and vendor/."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            nested = os.path.join(dirpath, d)
            if d == "vendor" or d.startswith((".", "_")):
                continue
            if os.path.exists(os.path.join(nested, "go.mod")):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            full = os.path.join(dirpath, f)
            if os.path.isfile(full):
                yield os.path.relpath(full, root), full


class Proxy:
    def __init__(self, out):
        self.out = out
        self.local = {}  # module path -> (dir, version)
        self.written = set()
        # Modules that get zips: those the root and local go.mod files
        # require (with Go >= 1.17 they list every module a build imports).
        self.zip_modules = set()

    def source_dir(self, module):
        if module in self.local:
            return self.local[module][0]
        d = os.path.join(GOCODE, module)
        return d if os.path.isdir(d) else None

    def go_mod(self, module):
        d = self.source_dir(module)
        if d and os.path.exists(os.path.join(d, "go.mod")):
            with open(os.path.join(d, "go.mod")) as f:
                return f.read()
        return "module %s\n" % module

    def add(self, module, version):
        if (module, version) in self.written:
            return []
        self.written.add((module, version))
        vdir = os.path.join(self.out, escape(module), "@v")
        os.makedirs(vdir, exist_ok=True)
        text = self.go_mod(module)
        with open(os.path.join(vdir, version + ".mod"), "w") as f:
            f.write(text)
        with open(os.path.join(vdir, version + ".info"), "w") as f:
            json.dump({"Version": version, "Time": "2023-01-01T00:00:00Z"}, f)
        with open(os.path.join(vdir, "list"), "a") as f:
            f.write(version + "\n")
        src = self.source_dir(module)
        if src and module in self.zip_modules:
            self.write_zip(os.path.join(vdir, version + ".zip"), module, version, src, text)
        return requirements(text)

    @staticmethod
    def write_zip(path, module, version, src, go_mod_text):
        prefix = "%s@%s/" % (module, version)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            has_mod = False
            for rel, full in module_files(src):
                if rel == "go.mod":
                    has_mod = True
                z.write(full, prefix + rel)
            if not has_mod:
                z.writestr(prefix + "go.mod", go_mod_text)

    def walk(self, roots):
        pending = list(roots)
        while pending:
            module, version = pending.pop()
            pending.extend(self.add(module, version))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out, root_mod = argv[1], argv[2]
    proxy = Proxy(out)
    roots = []
    for spec in argv[3:]:
        name, _, rest = spec.partition("=")
        d, _, version = rest.rpartition("@")
        proxy.local[name] = (d, version)
        roots.append((name, version))
    with open(root_mod) as f:
        roots.extend(requirements(f.read()))
    proxy.zip_modules = {m for m, _ in roots}
    for name in proxy.local:
        proxy.zip_modules.update(m for m, _ in requirements(proxy.go_mod(name)))
    proxy.walk(roots)
    print("debian_goproxy: %d module versions in %s" % (len(proxy.written), out))


if __name__ == "__main__":
    main(sys.argv)
