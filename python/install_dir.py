"""Prints where `cmake --install` puts the hybridnas Python module for an install prefix.

    python3 python/install_dir.py PREFIX

The first of the interpreter's install schemes whose package directory under PREFIX is already
on this interpreter's sys.path (Debian: /usr/local/lib/python3.X/dist-packages for /usr/local,
/usr/lib/python3/dist-packages for /usr), else the standard PREFIX/lib/python3.X/site-packages
(which a user adds to PYTHONPATH).
"""
import os
import sys
import sysconfig

prefix = os.path.abspath(sys.argv[1])
candidates = []
schemes = sysconfig.get_scheme_names()
for scheme in ("posix_local", "deb_system", "posix_prefix"):
    if scheme not in schemes:
        continue
    base = prefix
    if scheme == "posix_local":  # Debian's scheme adds /local itself
        if not prefix.endswith("/local"):
            continue
        base = prefix[: -len("/local")]
    candidates.append(sysconfig.get_path("purelib", scheme, vars={"base": base, "platbase": base}))
on_path = [os.path.abspath(p) for p in sys.path if p]
for c in candidates:
    if os.path.abspath(c) in on_path:
        print(c)
        break
else:
    print(sysconfig.get_path("purelib", "posix_prefix", vars={"base": prefix, "platbase": prefix}))
