"""``GET /api/orders``: newest first, a page at a time, filtered by status, a key's own with keys on."""

from __future__ import annotations

import pytest

from tornado_engine.storage.order_index import Position


async def page(client, query: str = "") -> tuple[int, dict]:
    return await client.get_json(f"/api/orders?{query}")


@pytest.mark.gen_test(timeout=30)
async def test_pages_list_every_order_newest_first_and_stay_stable_while_orders_arrive(client):
    order_ids = [await client.submit(amount=i + 1) for i in range(7)]
    code, first = await page(client, "limit=3")
    assert code == 200 and [o["orderId"] for o in first["orders"]] == order_ids[:-4:-1]
    assert (
        first["orders"][0]
        == {
            "orderId": order_ids[-1],
            "status": "pending",
            "order": first["orders"][0]["order"],
        }
        and first["orders"][0]["order"]["amount"] == 7
    )
    newer = await client.submit()  # arrives at the head: the next page goes on where the first ended
    seen = [o["orderId"] for o in first["orders"]]
    cursor = first["nextCursor"]
    while cursor is not None:
        code, following = await page(client, f"limit=3&cursor={cursor}")
        assert code == 200
        seen += [o["orderId"] for o in following["orders"]]
        cursor = following["nextCursor"]
    assert seen == order_ids[::-1] and newer not in seen


@pytest.mark.gen_test(timeout=30)
async def test_the_status_filter_lists_only_orders_now_in_that_status(client):
    done = await client.submit()
    frames = await client.frames(done)
    assert frames[-1]["status"] == "confirmed"
    waiting = await client.submit()
    _, confirmed = await page(client, "status=confirmed")
    assert [o["orderId"] for o in confirmed["orders"]] == [done] and confirmed["nextCursor"] is None
    _, pending = await page(client, "status=pending")
    assert [o["orderId"] for o in pending["orders"]] == [waiting]


@pytest.mark.parametrize(
    "query, field",
    [
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=many", "limit"),
        ("cursor=../../etc", "cursor"),
    ],
)
@pytest.mark.gen_test(timeout=15)
async def test_a_wrong_list_question_is_a_400_naming_the_parameter(client, query, field):
    code, body = await page(client, query)
    assert code == 400 and body["field"] == field and body["error"]


def test_a_cursor_names_the_last_entry_shown():
    assert Position.parse(Position(1700000000123, "abc-1").cursor()) == Position(1700000000123, "abc-1")
