#!/usr/bin/env python3
"""Simulate one phone call against `voice-operator local`, as ElevenLabs
would make it, and show the action-log records the call produced.

The call, in order:

  1. conversation-init  POST /api/elevenlabs/conversation-init (inbound call;
                        bearer = the webhook secret, as ElevenLabs sends it
                        with configured headers)
  2. seed webhook       POST /api/elevenlabs/webhook: conversation_start,
                        then three `message` turns (signed): the caller asks
                        what is free on the next weekday, books the first
                        free slot giving their number (the agent books it and
                        confirms by SMS), then asks for the same slot again
                        (the calendar refuses it: 409 slot taken)
  3. custom LLM         POST /api/elevenlabs/llm/<business>/<location>/chat/completions
                        (OpenAI chat-completions, streamed as server-sent events)
  4. seed webhook       conversation_end with the call's duration (signed)
  5. post-call          POST /api/elevenlabs/post-call, post_call_transcription (signed)

Standard library only. `--self-test` checks the signer against the
signature vectors in ../shared/fixtures/elevenlabs/ instead.

With `local` on its embedded defaults the booking goes to its bookings
calendar and the SMS to its outbox (<data-dir>/outbox.sqlite), which is
shown at the end.

Exit status: 0 when every step answered 2xx (and the self-test passed),
1 when a step was refused (or a vector failed), 2 when the call could not
be made at all (no secret, server not reachable).
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path

SIGNATURE_HEADER = "ElevenLabs-Signature"
# The replay window the server enforces (src/elevenlabs/signature.rs).
MAX_AGE_SECS = 30 * 60
MAX_AHEAD_SECS = 5 * 60

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VECTORS = [
    REPO.parent / "shared" / "fixtures" / "elevenlabs" / "signature_vectors.json",
    REPO.parent / "shared" / "fixtures" / "elevenlabs" / "seed_webhook_vector.json",
]

CALLER = "+40721000111"
SECS_PER_TURN = 8.0


class Fatal(Exception):
    """The simulation cannot go on; the message says why."""


# --- signatures ---------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ElevenLabs-Signature value for `body` sent at `timestamp`."""
    t = str(timestamp)
    digest = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256)
    return f"t={t},v0={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int) -> str:
    """What the server would decide: valid, expired, future, mismatch or
    malformed (the same rules as src/elevenlabs/signature.rs)."""
    timestamp = None
    candidates = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return "malformed"
        if key == "t":
            if timestamp is not None or not value.isdigit() or len(value) > 12:
                return "malformed"
            timestamp = value
        elif key == "v0":
            if len(value) != 64:
                return "malformed"
            try:
                bytes.fromhex(value)
            except ValueError:
                return "malformed"
            candidates.append(value.lower())
    if timestamp is None or not candidates:
        return "malformed"
    age = now - int(timestamp)
    if age > MAX_AGE_SECS:
        return "expired"
    if -age > MAX_AHEAD_SECS:
        return "future"
    expected = sign(secret, int(timestamp), body).split("v0=", 1)[1]
    if any(hmac.compare_digest(expected, c) for c in candidates):
        return "valid"
    return "mismatch"


def expected_outcome(text: str) -> str:
    """The outcome a vector's free-text `expect` names."""
    text = text.lower()
    for needle, outcome in [
        ("malformed", "malformed"),
        ("expired", "expired"),
        ("future", "future"),
        ("invalid", "mismatch"),
        ("valid", "valid"),
    ]:
        if needle in text:
            return outcome
    raise ValueError(f"unknown expectation {text!r}")


def self_test(paths) -> int:
    """Checks sign() and verify() against every vector in `paths`."""
    if not paths:
        paths = [p for p in DEFAULT_VECTORS if p.exists()]
        if not paths:
            print(f"no vectors found at {DEFAULT_VECTORS[0]}; give a path", file=sys.stderr)
            return 1
    checked = failed = 0
    for path in map(Path, paths):
        try:
            vectors = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            print(f"FAIL {path}: cannot read the vectors: {e}")
            return 1
        if isinstance(vectors, dict):
            vectors = [vectors]
        for i, v in enumerate(vectors, 1):
            name = f"{path.name} #{i} ({v['expect']})"
            checked += 1
            try:
                body = (path.parent / v["file"]).read_bytes()
                want = expected_outcome(v["expect"])
            except (OSError, ValueError) as e:
                print(f"FAIL {name}: {e}")
                failed += 1
                continue
            got = verify(v["secret"], v["header"], body, v["now"])
            problems = []
            if got != want:
                problems.append(f"verify says {got}, the vector expects {want}")
            if want == "valid":
                t = int(v["header"].split("t=", 1)[1].split(",", 1)[0])
                ours = sign(v["secret"], t, body)
                if ours != v["header"]:
                    problems.append(f"signed {ours}, the vector has {v['header']}")
            if problems:
                failed += 1
                print(f"FAIL {name}: " + "; ".join(problems))
            else:
                print(f"ok   {name}: {got}")
    print(f"self-test: {checked} vectors, {checked - failed} passed, {failed} failed")
    return 0 if failed == 0 and checked > 0 else 1


# --- HTTP ---------------------------------------------------------------


def encode(value) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Client:
    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")

    def request(self, path: str, body: bytes, headers: dict, stream=False):
        """POSTs `body`; returns (status, reason, response) where response is
        the open response when `stream` and the parsed body otherwise."""
        headers = {"Content-Type": "application/json", **headers}
        req = urllib.request.Request(self.base + path, data=body, headers=headers, method="POST")
        try:
            response = urllib.request.urlopen(req, timeout=60)
        except urllib.error.HTTPError as e:
            return e.code, e.reason, parse(e.read())
        except urllib.error.URLError as e:
            raise Fatal(
                f"cannot reach {self.base}: {e.reason}; start `voice-operator local` "
                f"(or pass --url)"
            ) from None
        if stream:
            return response.status, response.reason, response
        with response:
            return response.status, response.reason, parse(response.read())


def parse(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def show(value, indent="      "):
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    for line in text.rstrip("\n").splitlines() or [""]:
        print(indent + line)


# --- local state ----------------------------------------------------------


def webhook_secret(data_dir: Path) -> str:
    value = os.environ.get("ELEVENLABS_WEBHOOK_SECRET", "").strip()
    if value:
        return value
    path = data_dir / "webhook-secret"
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if not value:
        raise Fatal(
            f"no webhook secret: ELEVENLABS_WEBHOOK_SECRET is not set and {path} does not exist; "
            f"start `voice-operator --data-dir {data_dir} local` first (it writes one there), "
            f"or set ELEVENLABS_WEBHOOK_SECRET to the secret the server uses"
        )
    return value


def llm_secret(given, data_dir: Path):
    """--llm-secret or $VOICE_OPERATOR_LLM_SECRET, else the one `local` wrote."""
    if given:
        return given
    try:
        return (data_dir / "llm-secret").read_text().strip() or None
    except FileNotFoundError:
        return None


def find_agent(data_dir: Path, business: str, location: str):
    """(agent id, VoiceAgent spec or None, where it was found), or
    (None, None, why not)."""
    wanted = f"tenant:{business}:{location}"
    offline = None
    try:
        offline = json.loads((data_dir / "offline-agents.json").read_text())
    except (OSError, ValueError):
        pass
    try:
        state = json.loads((data_dir / "voiceagents.json").read_text())
    except (OSError, ValueError):
        state = {}
    matches = []
    for key, entry in state.get("voiceagents", {}).items():
        obj = entry.get("object", {})
        spec = obj.get("spec", {})
        status = obj.get("status") or {}
        if (spec.get("businessId"), spec.get("locationId")) != (business, location):
            continue
        if status.get("agentId") and not obj.get("metadata", {}).get("deletionTimestamp"):
            matches.append((status.get("phase") != "Active", key, status["agentId"], spec))
    if matches:
        _, key, agent, spec = sorted(matches)[0]
        note = f"VoiceAgent {key} in voiceagents.json"
        if offline is not None and agent in offline and wanted not in offline[agent].get("tags", []):
            note += f" (warning: the offline agent does not carry the tag {wanted})"
        return agent, spec, note
    for agent, body in (offline or {}).items():
        if wanted in body.get("tags", []):
            return agent, None, "tag in offline-agents.json"
    return None, None, f"no VoiceAgent for {business}/{location} with an agent id in {data_dir}"


class ActionLogTail:
    """The lines appended to the JSON-lines action log after start."""

    def __init__(self, path: Path):
        self.path = path
        self.start = path.stat().st_size if path.exists() else 0

    def records(self):
        if not self.path.exists():
            return None
        with open(self.path, "rb") as f:
            f.seek(self.start)
            data = f.read()
        out = []
        # A line still being written has no newline yet; leave it.
        for line in data.split(b"\n")[:-1]:
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"unparsed": line.decode("utf-8", "replace")})
        return out


def belongs(record, conversation: str) -> bool:
    data = record.get("data", {}) if isinstance(record, dict) else {}
    return conversation in (
        data.get("agentSessionId"),
        data.get("metadata", {}).get("conversationId"),
    )


# --- the call -------------------------------------------------------------


class Call:
    """One simulated call: its steps, what they answered, its transcript."""

    def __init__(self, args, secret: str, agent_id, spec: dict, agent_note: str):
        self.args = args
        self.secret = secret
        self.client = Client(args.url)
        self.conversation = args.conversation
        self.agent_id = agent_id
        self.agent_note = agent_note
        self.greeting = spec.get("greeting", "")
        self.prompt = spec.get("customPrompt") or "You are the phone assistant of this business."
        self.called_number = spec.get("phoneNumber", "+40312345678")
        # A Twilio-like call SID, stable for a conversation id.
        self.call_sid = "CA" + hashlib.sha256(self.conversation.encode()).hexdigest()[:32]
        # The call's own clock: each caller turn takes a few seconds, as on
        # a phone, so durations and transcript times look like a real call.
        self.clock = 0.0
        self.step = 0
        self.failed = []
        # Steps whose 2xx answer means one action-log record.
        self.logged = 0
        self.transcript = []

    def turn(self) -> float:
        """Seconds into the call when the caller's next turn ends."""
        self.clock += SECS_PER_TURN
        return self.clock

    def hang_up(self) -> float:
        """The call's length."""
        return self.turn()

    def headline(self, what: str, path: str, status: int, reason: str):
        self.step += 1
        ok = 200 <= status < 300
        print(f"[{self.step}] {what}: POST {path} -> {status} {reason}")
        if not ok:
            self.failed.append(f"{what} ({status})")
        return ok

    def post(self, what: str, path: str, value, headers: dict, signed: bool):
        body = encode(value)
        if signed:
            headers = {**headers, SIGNATURE_HEADER: sign(self.secret, int(time.time()), body)}
        status, reason, answer = self.client.request(path, body, headers)
        ok = self.headline(what, path, status, reason)
        show(answer)
        return ok, answer

    def stop(self) -> bool:
        """True when the call should end here (a step failed)."""
        return bool(self.failed) and not self.args.keep_going

    def conversation_init(self):
        if self.agent_id is None:
            self.step += 1
            print(f"[{self.step}] conversation-init: skipped ({self.agent_note})")
            return {}
        body = {
            "caller_id": CALLER,
            "agent_id": self.agent_id,
            "called_number": self.called_number,
            "call_sid": self.call_sid,
        }
        ok, answer = self.post(
            "conversation-init",
            "/api/elevenlabs/conversation-init",
            body,
            {"Authorization": f"Bearer {self.secret}"},
            signed=False,
        )
        if ok and isinstance(answer, dict):
            return answer
        return {}

    def seed(self, event: str, content=None, duration=None):
        body = {
            "event": event,
            "conversationId": self.conversation,
            "metadata": {
                "businessId": self.args.business,
                "locationId": self.args.location,
                "callerPhone": CALLER,
            },
        }
        if content is not None:
            body["message"] = {"content": content}
        if duration is not None:
            body["duration"] = duration
        label = f"webhook {event}" + (f" {content!r}" if content else "")
        ok, answer = self.post(label, "/api/elevenlabs/webhook", body, {}, signed=True)
        said = answer.get("response", "") if isinstance(answer, dict) else ""
        if ok:
            self.logged += 1
            # A confirmation the agent sent leaves a record of its own.
            self.logged += said.count("send_external_message done")
            if content is not None:
                self.transcript.append(("user", content, duration))
                if said:
                    self.transcript.append(("agent", said, duration + 1))
        return said

    def custom_llm(self, text: str, extra_body: dict):
        path = (
            f"/api/elevenlabs/llm/{self.args.business}/{self.args.location}/chat/completions"
        )
        # ElevenLabs sends the prompt, the greeting and the call so far.
        messages = [{"role": "system", "content": self.prompt}]
        if self.greeting:
            messages.append({"role": "assistant", "content": self.greeting})
        for role, message, _ in self.transcript:
            messages.append({"role": "user" if role == "user" else "assistant", "content": message})
        messages.append({"role": "user", "content": text})
        request = {
            "model": "voice-operator",
            "messages": messages,
            "temperature": 0.5,
            "max_tokens": 300,
            "stream": True,
            "user_id": CALLER,
            "elevenlabs_extra_body": {**extra_body, "conversation_id": self.conversation},
        }
        # What every agent the operator manages sends: the call's id, from
        # the dynamic variable system__conversation_id.
        headers = {"Accept": "text/event-stream", "X-Conversation-Id": self.conversation}
        if self.args.llm_secret:
            headers["Authorization"] = f"Bearer {self.args.llm_secret}"
        status, reason, response = self.client.request(
            path, encode(request), headers, stream=True
        )
        ok = self.headline(f"custom LLM {text!r}", path, status, reason)
        if not ok:
            show(response)
            return False
        pieces, chunks, last, finish = [], 0, None, None
        with response:
            print(f"      content-type: {response.headers.get('Content-Type')}")
            # One event per `data:` line; read as they arrive.
            for raw in response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                last = data
                if data == "[DONE]":
                    continue
                event = json.loads(data)
                chunks += 1
                choice = event["choices"][0]
                pieces.append(choice.get("delta", {}).get("content") or "")
                finish = choice.get("finish_reason") or finish
        text_out = "".join(pieces)
        texts = sum(1 for p in pieces if p)
        print(
            f"      {chunks} chat.completion.chunk events ({texts} with text), "
            f"finish_reason {finish!r}"
        )
        print(f"      assembled: {text_out}")
        if last != "[DONE]":
            print(f"      the stream did not end with data: [DONE] (last event: {last!r})")
            self.failed.append("custom LLM (no [DONE])")
            return False
        print("      ended with data: [DONE]")
        self.logged += 1
        at = self.turn()
        self.transcript.append(("user", text, at))
        self.transcript.append(("agent", text_out, at + 1))
        return True

    def post_call(self, variables: dict):
        duration = self.clock
        turns = []
        if self.greeting:
            turns.append({"role": "agent", "message": self.greeting, "time_in_call_secs": 0})
        for role, message, at in self.transcript:
            turns.append({"role": role, "message": message, "time_in_call_secs": at})
        now = int(time.time())
        data = {
            "conversation_id": self.conversation,
            "status": "done",
            "user_id": None,
            "transcript": turns,
            "metadata": {
                "start_time_unix_secs": now - int(duration),
                "call_duration_secs": duration,
                "cost": 40 * max(1, int(duration)),
                "termination_reason": "end_call tool was called.",
                "phone_call": {
                    "direction": "inbound",
                    "phone_number_id": "pn_simulated",
                    "agent_number": self.called_number,
                    "external_number": CALLER,
                    "type": "twilio",
                    "call_sid": self.call_sid,
                },
            },
            "analysis": {
                "call_successful": "success",
                "transcript_summary": "Simulated call: the caller asked for a free slot and a booking.",
                "evaluation_criteria_results": {},
                "data_collection_results": {},
            },
            "conversation_initiation_client_data": {"dynamic_variables": variables},
        }
        if self.agent_id is not None:
            data = {"agent_id": self.agent_id, **data}
        body = {"type": "post_call_transcription", "event_timestamp": now, "data": data}
        ok, answer = self.post(
            "post-call post_call_transcription", "/api/elevenlabs/post-call", body, {}, signed=True
        )
        if ok and not (isinstance(answer, dict) and answer.get("status") == "duplicate"):
            self.logged += 1
        return ok


def simulate(args) -> int:
    data_dir = Path(args.data_dir)
    secret = webhook_secret(data_dir)
    args.llm_secret = llm_secret(args.llm_secret, data_dir)
    log_path = Path(args.action_log) if args.action_log else data_dir / "agent-log.jsonl"
    tail = ActionLogTail(log_path)

    agent_id, spec, note = find_agent(data_dir, args.business, args.location)
    if args.agent_id:
        agent_id, note = args.agent_id, "given with --agent-id"
    call = Call(args, secret, agent_id, spec or {}, note)
    day = next_weekday(date.today()).isoformat()

    print(f"simulated call {args.conversation} to {args.business}/{args.location} at {args.url}")
    print(f"  agent: {agent_id or 'none'} ({note})")
    print(f"  action log: {log_path}")
    print()

    init = call.conversation_init()
    if not call.stop():
        variables = init.get("dynamic_variables") or {
            "business_id": args.business,
            "location_id": args.location,
        }
        extra = init.get("custom_llm_extra_body") or {}
        # The caller books the first slot the agent says is free (10:00
        # when the answer names none), then asks for it a second time.
        slot = {"date": day, "time": "10:00"}
        for step in (
            lambda: call.seed("conversation_start"),
            lambda: slot.update(
                free_slot(
                    call.seed("message", f"Is there anything available on {day}?", call.turn()),
                    slot,
                )
            ),
            lambda: call.seed(
                "message",
                f"Please book me for {slot['date']} at {slot['time']}, my number is {CALLER}",
                call.turn(),
            ),
            lambda: call.seed(
                "message",
                f"Can you also book {slot['date']} at {slot['time']} for my sister?",
                call.turn(),
            ),
            lambda: call.custom_llm(f"Which times are available on {slot['date']}?", extra),
            lambda: call.seed("conversation_end", duration=call.hang_up()),
            lambda: call.post_call(variables),
        ):
            step()
            if call.stop():
                break
    print()
    records = show_records(tail, args.conversation, call.logged)
    show_outbox(data_dir / "outbox.sqlite", records)
    print(
        f"on the dashboard: {args.url}/dashboard (the admin token: {data_dir / 'admin-token'}, "
        "or VOICE_OPERATOR_ADMIN_TOKEN if you set it); "
        f"this call's story: {args.url}/api/dashboard/calls/{args.conversation}"
    )
    if call.failed:
        print(f"refused: {', '.join(call.failed)}")
        return 1
    return 0


def show_records(tail: ActionLogTail, conversation: str, expected: int):
    deadline = time.monotonic() + 3.0
    records = tail.records()
    while records is not None and time.monotonic() < deadline:
        if sum(belongs(r, conversation) for r in records) >= expected:
            break
        time.sleep(0.1)
        records = tail.records()
    if records is None:
        print(
            f"action log: {tail.path} does not exist; records go to another sink "
            f"(--action-sink / --action-log-file), or pass --action-log PATH"
        )
        return []
    ours = [r for r in records if belongs(r, conversation)]
    print(f"action-log records of {conversation} ({tail.path}):")
    for record in ours:
        show(record, indent="  ")
    kinds = {}
    for r in ours:
        data = r.get("data", {})
        key = f"{data.get('actionType')}/{data.get('subAction')}"
        kinds[key] = kinds.get(key, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    events = [r.get("data", {}).get("metadata", {}).get("event", "?") for r in ours]
    others = len(records) - len(ours)
    line = f"summary: {len(ours)} records ({summary})"
    if events:
        line += f"; events: {', '.join(events)}"
    if len(ours) < expected:
        line += f"; {expected} expected, the rest did not arrive within 3 s"
    if others:
        line += f"; {others} other records were written meanwhile"
    print(line)
    return ours


def next_weekday(today: date) -> date:
    """The first Monday-to-Friday day after `today`: the embedded calendar's
    default opening days."""
    day = today + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def free_slot(said: str, slot: dict) -> dict:
    """The date and first free time the agent's availability answer names
    (the app server's JSON after "done: "), else `slot` unchanged."""
    day = re.search(r'"date"\s*:\s*"(\d{4}-\d{2}-\d{2})"', said or "")
    free = re.search(r'"free"\s*:\s*\[\s*"(\d{2}:\d{2})"', said or "")
    if day and free:
        return {"date": day.group(1), "time": free.group(1)}
    return slot


def show_outbox(path: Path, records):
    """The outbox messages the call's records point at (`local`'s embedded
    messaging writes them there instead of sending them)."""
    ids = [
        r.get("data", {}).get("externalId")
        for r in records
        if r.get("data", {}).get("metadata", {}).get("standIn") == "outbox"
    ]
    if not ids or not path.exists():
        return
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            f"SELECT id, channel, recipient, text FROM messages WHERE id IN ({','.join('?' * len(ids))})",
            ids,
        ).fetchall()
    print(f"outbox ({path}), not sent:")
    for id_, channel, recipient, text in rows:
        print(f"  {id_} {channel} to {recipient}: {text}")


def main() -> int:
    # Piped into head or less: stop quietly when the reader goes away.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = argparse.ArgumentParser(
        description="Simulate one ElevenLabs phone call against `voice-operator local` "
        "and print the answers and the action-log records it produced."
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the server (default %(default)s)")
    parser.add_argument(
        "--data-dir",
        default=".voice-operator",
        help="the server's --data-dir: webhook secret, agents, action log (default %(default)s)",
    )
    parser.add_argument("--business", default="B0100001", help="businessId (default %(default)s)")
    parser.add_argument("--location", default="L0100001", help="locationId (default %(default)s)")
    parser.add_argument(
        "--conversation",
        default=f"sim-{int(time.time())}-{os.urandom(2).hex()}",
        help="conversation id (default sim-<unix time>-<random>)",
    )
    parser.add_argument(
        "--agent-id",
        help="ElevenLabs agent id for conversation-init and post-call "
        "(default: looked up in <data-dir>/voiceagents.json, then offline-agents.json)",
    )
    parser.add_argument(
        "--llm-secret",
        default=os.environ.get("VOICE_OPERATOR_LLM_SECRET") or None,
        help="bearer secret of the custom-LLM route (default $VOICE_OPERATOR_LLM_SECRET, "
        "else <data-dir>/llm-secret, which `local` writes)",
    )
    parser.add_argument(
        "--action-log",
        metavar="PATH",
        help="JSON-lines action log to read (default <data-dir>/agent-log.jsonl)",
    )
    parser.add_argument(
        "--keep-going", action="store_true", help="run every step even after one was refused"
    )
    parser.add_argument(
        "--self-test",
        nargs="*",
        metavar="VECTORS",
        help="check the signer against signature vector files (default: the ones in "
        "../shared/fixtures/elevenlabs/ next to the repository) and exit",
    )
    args = parser.parse_args()
    if args.self_test is not None:
        return self_test(args.self_test)
    try:
        return simulate(args)
    except Fatal as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
