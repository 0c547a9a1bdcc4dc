"""plan.images_not_matching: what keeps state=started from starting exactly the recorded digests."""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.compose.plan import images_not_matching

V1 = "127.0.0.1:5000/switchyard/demo-app@sha256:" + "1" * 64
V2 = "127.0.0.1:5000/switchyard/demo-app@sha256:" + "2" * 64


def container(service: str, image: str) -> dict:
    return {"service": service, "name": f"shop-blue-{service}-1", "image": image}


def test_the_recorded_digest_matches_and_another_is_named() -> None:
    assert images_not_matching([container("api", V1)], {"api": V1}) == []
    assert images_not_matching([container("api", V2)], {"api": V1}) == [f"api (shop-blue-api-1) runs {V2}, not {V1}"]


def test_a_container_by_tag_is_refused_and_a_service_without_container_has_nothing_to_start() -> None:
    assert images_not_matching([], {"api": V1}) == []  # scaled to 0: state=started starts what exists
    tagged = "127.0.0.1:5000/switchyard/demo-app:v1"
    assert images_not_matching([container("api", tagged)], {"api": V1}) == [
        f"api (shop-blue-api-1) runs {tagged}, not {V1}"
    ]


def test_a_tag_given_or_no_images_compare_nothing() -> None:
    assert images_not_matching([container("api", V2)], {"api": "127.0.0.1:5000/switchyard/demo-app:v1"}) == []
    assert images_not_matching([container("api", V2)], {}) == [] and images_not_matching([], None) == []
