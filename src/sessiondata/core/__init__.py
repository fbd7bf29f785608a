"""The store core: the persistent series, snapshots, the one symbol writer, the window machine, the store.

Internal: the public names are re-exported by `sessiondata` (see its ``__all__``). Imports run one way,
``series`` ← ``snapshot`` ← ``windows``/``derived``/``provenance`` ← ``writer`` ← ``publication`` ← ``store``
(``config``, the configuration keywords, ← ``store``);
nothing here imports the replay, a repository or the command line.
"""
