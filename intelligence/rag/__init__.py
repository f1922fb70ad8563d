"""Retrieval-augmented generation: the eight parts, one module each.

1. query router ............ :mod:`~intelligence.rag.router`
2. hybrid search ........... :mod:`~intelligence.rag.index` (Chroma dense + :mod:`~intelligence.rag.sparse` BM25,
                             fused by :mod:`~intelligence.rag.fusion`)
3. value scoring ........... :mod:`~intelligence.rag.scoring`
4. evaluation .............. :mod:`~intelligence.rag.evaluation`, :mod:`~intelligence.rag.collections`,
                             :mod:`~intelligence.rag.benchmark`
5. freshness ............... :mod:`~intelligence.rag.registry`, :mod:`~intelligence.rag.loaders`
6. context packing ......... :mod:`~intelligence.rag.packing`
7. feedback loop ........... :mod:`~intelligence.rag.feedback`
8. multi-source fusion ..... :mod:`~intelligence.rag.sources`

:mod:`~intelligence.rag.service` composes them; :mod:`~intelligence.rag.actions` exposes them
to circuits; :mod:`~intelligence.rag.cli` to the command line. Nothing heavy is imported here.
"""
