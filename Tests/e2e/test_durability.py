"""Acknowledged appends and commits survive SIGKILL; idempotency survives restart."""
import concurrent.futures

from conftest import Server, bearer


def test_acknowledged_events_survive_sigkill(data_dir):
    server = Server(data_dir).start()
    headers = bearer(server.token())
    thread = server.post("/v1/threads", json={}, headers=headers).json()["thread_id"]
    canvas = server.post("/v1/canvases", json={}, headers=headers).json()["canvas_id"]

    def post(index):
        response = server.post(f"/v1/threads/{thread}/messages", json={"text": f"m{index}", "client_message_id": f"k{index}"},
                               headers=headers)
        assert response.status_code == 201
        return response.json()["event"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        acknowledged = list(pool.map(post, range(200)))
    for rev in range(20):
        response = server.post(f"/v1/canvases/{canvas}/commands", headers=headers,
                               json={"command_id": f"c{rev}", "base_rev": rev, "ops": [{"op": "add", "path": f"/k{rev}", "value": rev}]})
        assert response.status_code == 201
    server.kill()  # SIGKILL: no shutdown, no flush beyond what each acknowledgement already did

    restarted = Server(data_dir).start()
    try:
        page = restarted.get(f"/v1/threads/{thread}/events?after=0&limit=1000", headers=headers).json()
        assert [e["seq"] for e in page["events"]] == list(range(1, 201))
        by_id = {e["id"]: e for e in page["events"]}
        assert all(by_id[event["id"]] == event for event in acknowledged)  # byte-identical replay
        head = restarted.get(f"/v1/canvases/{canvas}", headers=headers).json()
        assert head["head_rev"] == 20 and head["document"] == {f"k{rev}": rev for rev in range(20)}
        # Idempotency records survived too: a retry returns the first outcome.
        retry = restarted.post(f"/v1/threads/{thread}/messages", json={"text": "m7", "client_message_id": "k7"}, headers=headers)
        assert retry.status_code == 200 and retry.json()["event"] == by_id[retry.json()["event"]["id"]]
        again = restarted.post(f"/v1/canvases/{canvas}/commands", headers=headers,
                               json={"command_id": "c3", "base_rev": 3, "ops": [{"op": "add", "path": "/k3", "value": 3}]})
        assert again.status_code == 200 and again.json()["rev"] == 4 and again.json()["replayed"] is True
    finally:
        restarted.kill()
