"""An object directory like a host's mizar_bpf_dir with many functions built:
what hosts that share it race over when they remove it at the same moment
(tests/unit/module_utils/bpf/test_objects.py with processes calling
objects.remove(), tests/integration/test_teardown_shared.py with teardown.yml
on lab hosts)."""
import os


def fill(path, dirs=20, files=30):
    """Create path with `dirs` function folders of `files` small objects each."""
    for i in range(dirs):
        d = os.path.join(path, "functions%d" % i)
        os.makedirs(d)
        for j in range(files):
            with open(os.path.join(d, "f%d.bpf.o" % j), "wb") as f:
                f.write(b"\x7fELF")
