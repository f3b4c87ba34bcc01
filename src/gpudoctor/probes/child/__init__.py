"""Scripts run inside the target interpreter. Standard library only; Python 3.6+ syntax.

Each script starts with `from _prelude import ...`; `child_process.script_source(name)` replaces that
line with the text of `_prelude.py` (cwd off sys.path, `emit`, the metadata scan, the CUDA-library
pattern), so what runs is one self-contained file. To run one by hand for a bug report:

    python -m gpudoctor.probes.child torch > gd-torch.py
    /path/to/the/target/python gd-torch.py     # prints @@GPUDOCTOR@@ {json} lines

`python -m gpudoctor.probes.child` with no argument lists the scripts.
"""
