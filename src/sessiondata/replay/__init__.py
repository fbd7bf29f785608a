"""The replay: a pure merge of sources by known time, the coordinator thread around it, and the upkeep.

Internal: the public names are re-exported by `sessiondata` (see its ``__all__``). The replay writes into the
store only through the store's public write API; the store knows nothing of it.
"""
