"""The knowledge graph: CRM accounts, agents, products and deals, reached through Bolt.

Modules, one job each: ``schema`` (labels and relationship types), ``embedded``
(the ArcadeDB Bolt server), ``client`` (the neo4j driver and error mapping),
``upsert``/``loader``/``summary`` (writes), ``related``/``catalogue``/``search``
(reads), ``actions`` (graph.upsert, graph.related, graph.query) and ``cli``.
Nothing is imported here so that ``import intelligence.graph.actions`` stays fast.
"""
