"""The user-item graph of a log: its build (:mod:`~graphsel.graph.build`), the graph
(:mod:`~graphsel.graph.bipartite`), the hub-aware k-hop expansion
(:mod:`~graphsel.graph.expansion`) and graph factors (:mod:`~graphsel.graph.embed`).
"""

from graphsel.graph.bipartite import Adjacency, BipartiteGraph
from graphsel.graph.build import (
    CART,
    CLICK,
    EDGE_CHOICES,
    FAV,
    ITEM,
    PURCHASE,
    USER,
    Relation,
    RelationEdges,
    relation,
    reverse_relation,
)
from graphsel.graph.expansion import (
    SELECT_MODES,
    Expansion,
    expand,
    graph_select,
    shared_seeds,
)

__all__ = [
    "CART",
    "CLICK",
    "EDGE_CHOICES",
    "FAV",
    "ITEM",
    "PURCHASE",
    "USER",
    "Adjacency",
    "BipartiteGraph",
    "Relation",
    "RelationEdges",
    "relation",
    "reverse_relation",
    "SELECT_MODES",
    "Expansion",
    "expand",
    "graph_select",
    "shared_seeds",
]
