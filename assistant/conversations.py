"""The use cases behind the HTTP API, one method each: chat, search, history, feedback, documents.

Handlers call exactly one method here. This layer applies access control (scopes, the collections
a key may read, ownership of conversations), turns stored messages into prompt history, and
persists what the chat service produced; it knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import anyio

from assistant import prompt
from assistant.answer import ChatAnswer, FinalEvent, TokenEvent
from assistant.audit import AuditLog
from assistant.auth import AuthError, Principal, allowed_collections, authorize
from assistant.chat_service import ChatRequest, ChatService
from assistant.db import Database, MessageRecord
from assistant.errors import ApiError, not_found
from assistant.inference_queue import QueueFull
from assistant.turn_screen import BLOCKED, TurnScreen
from ingestion.index_store import IndexStore
from ingestion.pipeline import delete_document
from ingestion.retriever import Retriever

# A ticket draft asks the model for a reply in the chat prompt's own format: the ticket is the question.
TICKET_TASK = "Write a short reply to this customer, using only the documents and citing them as [1], [2]."
TICKET_PROMPT_SHARE = 0.5  # of the prompt budget (tokens) a long ticket may take; the rest is for documents


@dataclass
class ChatTurn:
    """A chat request resolved against the key's rights and the stored conversation."""

    conversation_id: str
    request: ChatRequest
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # in the audit log and the response
    created: bool = False  # this turn created its conversation: shed by a full queue, it takes it away again
    arm: Any = None  # the rollout arm answering (assistant.loop_hooks.Arm), None outside a rollout


class ConversationService:
    def __init__(self, chat: ChatService, retriever: Retriever, store: IndexStore, db: Database, max_title_chars: int = 80,
                 audit: AuditLog | None = None, loop: Any = None):
        self.chat = chat
        self.turns = TurnScreen(chat.guard)  # every turn screened once; only masked, unblocked turns reach a prompt
        self.loop = loop  # assistant.loop_hooks.LoopHooks: rollout arm, review queue, drift watch; None = off
        self.audit = audit  # guardrail actions, one line each
        self.retriever = retriever
        self.store = store
        self.db = db
        self.max_title_chars = max_title_chars

    # --- chat -------------------------------------------------------------------------------
    def begin(
        self,
        principal: Principal,
        message: str,
        conversation_id: str | None = None,
        collections: list[str] | None = None,
        adapter: str | None = None,
        max_new_tokens: int | None = None,
        persist: bool = True,
        history: list[prompt.Turn] | None = None,
        retrieval: bool = True,
    ) -> ChatTurn:
        authorize(principal, "chat")
        if not retrieval:  # a closed-book answer skips the documents and grounding: for evaluators, not for chat keys
            authorize(principal, "eval", "closed-book answers, retrieval: false, skip the documents and the grounding "
                      "rail")
        self._check_adapter(adapter)
        self._shed_if_full()
        # Input rails first: only the masked message may reach the model, the logs or the database.
        screened = self.turns.check(message)
        message = screened.text if screened is not None else message
        created = persist and not conversation_id
        if persist:
            conversation = self._conversation(principal, conversation_id, message, collections, adapter)
            collections = collections if collections is not None else _list(conversation.collections)
            stored = self.db.conversations.history(conversation.id, principal.key_id, admin=principal.is_admin) or []
            # An answer cut short (client gone, generation failed) stays visible in the conversation, marked by its
            # finish_reason, but never primes the model as if complete: the prompt then reads as after a crash,
            # where nothing of the answer was stored (a transaction) and only the question remains. Stored turns
            # were screened and masked when stored; blocked ones (and the refusals to them) never come back.
            earlier = self.turns.stored([m for m in stored if not _incomplete(m)])
        else:  # client-supplied turns (OpenAI `messages`): each screened and masked here, blocked ones dropped
            earlier = self.turns.history(history or [])
        screened = self.turns.question(screened, earlier)  # split payloads, "as I said above", forged answers
        history = earlier.history
        if persist:
            self.db.conversations.add_message(conversation.id, principal.key_id, "user", message,
                                              finish_reason=BLOCKED if screened is not None and screened.blocked else None,
                                              admin=principal.is_admin)
            conversation_id = conversation.id
        searchable = self._collections(principal, collections)
        arm = self.loop.assign(principal.key_id, conversation_id) if self.loop is not None and adapter is None else None
        adapter = arm.adapter if arm is not None else adapter
        request = ChatRequest(message, history or [], searchable, adapter=adapter, max_new_tokens=max_new_tokens,
                              retrieval=retrieval, screened=screened)
        return ChatTurn(conversation_id or "", request, created=created, arm=arm)

    async def stream(self, principal: Principal, turn: ChatTurn, persist: bool = True, entry: str = "chat") -> AsyncIterator[Any]:
        """TokenEvents, then FinalEvent; the answer is stored even when the client leaves mid-stream.

        A stream closed before its final event (client gone) stores the partial text with finish_reason
        "cancelled"; one whose generation failed stores it as "error" (the exception still propagates).
        """
        pieces: list[str] = []
        final: ChatAnswer | None = None
        ending = "cancelled"
        try:
            async for event in self.chat.stream(turn.request):
                if isinstance(event, TokenEvent):
                    pieces.append(event.text)
                    yield event
                else:
                    final = event.answer
                    if self.audit is not None:
                        await asyncio.to_thread(self.audit.record, final.rail_events, turn.request_id,
                                                principal.key_id, entry)
                    message = await asyncio.to_thread(self._store_answer, principal, turn, final) if persist else None
                    if persist:
                        event = FinalEvent(final, message.id if message else None)
                    if self.loop is not None:  # review queue, rollout arm, drift watch (unstored answers too)
                        await asyncio.to_thread(self.loop.answered, message.id if message else None,
                                                turn.request.question, final, turn.request.collections, turn.arm)
                    yield event
        except QueueFull:  # filled up since `begin` looked: the 503 leaves no new conversation behind
            if persist and turn.created and not pieces:
                await asyncio.to_thread(self.db.conversations.delete, turn.conversation_id, principal.key_id,
                                        admin=principal.is_admin)
            raise
        except Exception:
            ending = "error"
            raise
        finally:
            if persist and final is None and pieces:  # only released text: it passed the output rails
                partial = "".join(pieces).strip()
                store = functools.partial(
                    self.db.conversations.add_message, turn.conversation_id, principal.key_id, "assistant", partial,
                    finish_reason=ending, model=self.chat.generator.name, adapter=turn.request.adapter,
                    admin=principal.is_admin)
                # Shielded: a client that left cancels this stream's scope, and the partial answer must still be
                # stored; the write itself runs on a worker thread, off the event loop.
                with anyio.CancelScope(shield=True):
                    await asyncio.to_thread(store)

    async def draft_reply(self, principal: Principal, ticket: str, collections: list[str] | None,
                          adapter: str | None) -> tuple[ChatTurn, ChatAnswer]:
        """A reply to a support ticket: the chat path (rails, retrieval, citations) with the ticket as the
        question and TICKET_TASK asked of the model; nothing is stored as a conversation."""
        ticket = self.chat.fit_question(ticket, TICKET_PROMPT_SHARE)
        if not ticket:
            raise ApiError("invalid_request", "the ticket has no text", 400)
        turn = await asyncio.to_thread(self.begin, principal, ticket, collections=collections, adapter=adapter,
                                       persist=False)
        turn.request.task = TICKET_TASK
        final: ChatAnswer | None = None
        async for event in self.stream(principal, turn, persist=False, entry="ticket"):
            if isinstance(event, FinalEvent):
                final = event.answer
        if final is None:
            raise ApiError("no_answer", "the answer stream ended without an answer", 502)
        return turn, final

    # --- retrieval only --------------------------------------------------------------------
    def search(self, principal: Principal, query: str, k: int, collections: list[str] | None,
               documents: list[str] | None, mode: str | None) -> list[dict[str, Any]]:
        authorize(principal, "chat")
        searchable = self._collections(principal, collections)
        if not searchable:
            return []
        hits = self.retriever.search(query, k=k, collections=searchable, documents=documents, mode=mode)  # type: ignore[arg-type]
        guard = self.chat.guard
        results = []
        for hit in hits:
            row = hit.to_dict()
            del row["source"]  # the server's own file path: not the caller's business (`document` names the file)
            if guard is not None:  # passages are output like answers: the same PII and secret masks apply
                row["text"] = guard.mask_output_text(row["text"])
            results.append(row)
        return results

    # --- history and feedback --------------------------------------------------------------
    def conversations(self, principal: Principal, limit: int, offset: int) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.db.conversations.list(principal.key_id, limit=limit, offset=offset)]

    def conversation(self, principal: Principal, conversation_id: str) -> dict[str, Any]:
        record = self.db.conversations.get(conversation_id, principal.key_id, admin=principal.is_admin)
        messages = self.db.conversations.history(conversation_id, principal.key_id, admin=principal.is_admin)
        if record is None or messages is None:
            raise not_found("conversation", conversation_id)
        return {**record.to_dict(), "messages": [m.to_dict() for m in messages]}

    def delete_conversation(self, principal: Principal, conversation_id: str) -> None:
        if not self.db.conversations.delete(conversation_id, principal.key_id, admin=principal.is_admin):
            raise not_found("conversation", conversation_id)

    def feedback(self, principal: Principal, message_id: str, rating: int, comment: str | None) -> dict[str, Any]:
        authorize(principal, "chat")
        if comment:  # a comment is a message too: stored (and read by reviewers) only with PII masked
            verdict = self.turns.check(comment)
            comment = verdict.text if verdict is not None else comment
        record = self.db.feedback.set(message_id, principal.key_id, rating, comment)
        if record is None:
            raise not_found("message", message_id)
        if self.loop is not None:
            self.loop.voted(message_id, rating, comment)
        return record.to_dict()

    # --- documents ---------------------------------------------------------------------------
    def documents(self, principal: Principal, collection: str | None) -> list[dict[str, Any]]:
        try:
            names = self._collections(principal, [collection] if collection else None)
        except AuthError as exc:
            if exc.code != "unknown_collection":
                raise
            return []  # a permitted collection with no documents (yet, or any more) lists as empty
        rows = [d for name in names for d in self.store.docstore.list_documents(name)]
        return [
            {"id": d.id, "collection": d.collection, "name": d.name, "sha256": d.sha256, "size_bytes": d.size_bytes,
             "pages": d.pages, "chunks": d.chunk_count, "ingested_at": d.ingested_at}
            for d in rows
        ]

    def delete_document(self, principal: Principal, document_id: int) -> None:
        authorize(principal, "ingest")
        doc = next((d for d in self.store.docstore.list_documents() if d.id == document_id), None)
        readable = doc is not None and (principal.all_collections or doc.collection in principal.collections)
        if not readable or not delete_document(self.store, document_id):
            raise not_found("document", document_id)

    # --- helpers -----------------------------------------------------------------------------
    def _collections(self, principal: Principal, requested: list[str] | None) -> list[str]:
        return allowed_collections(principal, requested, self.store.docstore.collections())

    def _shed_if_full(self) -> None:
        """QueueFull before the rails, retrieval or storage run: a shed request costs little and stores nothing
        (no conversation left holding an unanswered question). The queue checks again when the turn gets there."""
        queue = self.chat.queue
        if queue.running >= queue.max_concurrent and queue.waiting >= queue.max_queue:
            raise QueueFull(queue.retry_after_s())

    def _check_adapter(self, adapter: str | None) -> None:
        if adapter not in (None, "base") and adapter not in self.chat.generator.adapters():
            known = ", ".join(self.chat.generator.adapters()) or "none loaded"
            raise ApiError("unknown_adapter", f"unknown adapter {adapter!r} (available: {known})", 404)

    def _conversation(self, principal, conversation_id, message, collections, adapter):
        if conversation_id:
            found = self.db.conversations.get(conversation_id, principal.key_id, admin=principal.is_admin)
            if found is None:
                raise not_found("conversation", conversation_id)
            return found
        if collections is not None:
            self._collections(principal, collections)  # refuse before anything is stored
        title = " ".join(message.split())[: self.max_title_chars]
        return self.db.conversations.create(principal.key_id, title=title, collections=collections, adapter=adapter)

    def _store_answer(self, principal: Principal, turn: ChatTurn, answer: ChatAnswer) -> MessageRecord | None:
        return self.db.conversations.add_message(
            turn.conversation_id, principal.key_id, "assistant", answer.text, citations=answer.citations,
            model=answer.model, adapter=answer.adapter, finish_reason=answer.finish_reason,
            timing=answer.timing_ms, refused=answer.refused, admin=principal.is_admin,
        )


INCOMPLETE_FINISH_REASONS = frozenset({"cancelled", "error", "empty"})  # partial or no answer: not history


def _incomplete(message: MessageRecord) -> bool:
    return message.role == "assistant" and message.finish_reason in INCOMPLETE_FINISH_REASONS


def _list(value: tuple[str, ...] | None) -> list[str] | None:
    return list(value) if value is not None else None


__all__ = ["AuthError", "ChatTurn", "ConversationService"]
