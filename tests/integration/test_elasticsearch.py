"""The local Elasticsearch is real: the official client's product check passes; index, refresh, search."""

from __future__ import annotations

from elasticsearch import Elasticsearch


def test_server_is_elasticsearch_8_matching_client_major(es: Elasticsearch) -> None:
    from importlib.metadata import version

    # The integ-test distribution has no GET / (so no info()); the node reports its version.
    nodes = es.nodes.info(node_id="_local", metric="_none")["nodes"]
    server_version = next(iter(nodes.values()))["version"]
    assert server_version.split(".")[0] == version("elasticsearch").split(".")[0]
    assert es.cluster.health()["cluster_name"] == "factory-twin"


def test_index_refresh_search(es: Elasticsearch, es_index: str) -> None:
    es.indices.create(
        index=es_index,
        mappings={"properties": {"machine_id": {"type": "keyword"}, "message": {"type": "text"}}},
    )
    docs = [
        ("a1", "press-2", "hydraulic pressure low"),
        ("a2", "weld-1", "wire feed jam"),
        ("a3", "press-2", "pressure recovered"),
    ]
    for doc_id, machine, message in docs:
        es.index(index=es_index, id=doc_id, document={"machine_id": machine, "message": message})
    # Same _id again: an update, not a second document (what makes sinks idempotent).
    es.index(index=es_index, id="a1", document={"machine_id": "press-2", "message": "hydraulic pressure low"})
    es.indices.refresh(index=es_index)

    hits = es.search(index=es_index, query={"match": {"message": "pressure"}})["hits"]
    assert {h["_id"] for h in hits["hits"]} == {"a1", "a3"}
    assert es.count(index=es_index)["count"] == 3
    by_machine = es.search(index=es_index, query={"term": {"machine_id": "weld-1"}})["hits"]["hits"]
    assert [h["_id"] for h in by_machine] == ["a2"]
