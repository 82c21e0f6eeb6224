"""`ragtune chat`: the assistant in a terminal, in-process (no server), streaming with citations.

Text is printed as the chat service releases it (assistant/release.py): only what passed the output rails, so a
replaced answer never shows the withheld text; its message follows what was already printed."""

from __future__ import annotations

import asyncio

from rich.console import Console

from assistant import assembly, prompt
from assistant.answer import FinalEvent, TokenEvent
from assistant.chat_service import ChatRequest, ChatService
from assistant.runtime.base import GeneratorError
from assistant.settings import Settings
from assistant.turn_screen import Earlier, TurnScreen


def citation_line(citation) -> str:
    where = f", page {citation.page}" if citation.page is not None else ""
    heading = f" — {citation.heading}" if citation.heading else ""
    return f"[{citation.number}] {citation.document}{where}{heading}"


def run(settings: Settings, collections: list[str] | None, adapter: str | None, console: Console) -> None:
    console.print("[dim]loading the model and index…[/dim]")
    generator = assembly.generator(settings)
    if adapter is not None and adapter not in generator.adapters():
        generator.close()
        known = ", ".join(generator.adapters()) or "none configured"
        raise ValueError(f"unknown adapter {adapter!r} (available: {known})")
    retriever = assembly.retriever(settings)
    missing = sorted(set(collections or []) - set(retriever.store.docstore.collections()))
    if missing:
        generator.close()
        raise ValueError(f"no documents in collection(s) {', '.join(missing)}: ingest some with `ragtune ingest`")
    service = assembly.chat_service(settings, retriever, generator)
    console.print(f"[dim]{generator.name}{' + ' + adapter if adapter else ''} ready. Empty line or Ctrl-D quits.[/dim]")
    try:
        _session(service, collections, adapter, console)
    finally:
        service.queue.close()
        generator.close()


def _session(service: ChatService, collections: list[str] | None, adapter: str | None, console: Console) -> None:
    # Every turn is screened once (assistant/turn_screen.py): the history holds only masked, unblocked turns, and a
    # message that continues a blocked one or completes an attack split over turns is refused.
    turns, earlier = TurnScreen(service.guard), Earlier()
    while True:
        try:
            question = console.input("[bold cyan]you>[/bold cyan] ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not question:
            break
        screened = turns.question(turns.check(question), earlier)
        asked = screened.text if screened is not None else question
        request = ChatRequest(asked, list(earlier.history), collections, adapter=adapter, screened=screened)
        try:
            answer = asyncio.run(_ask(service, request, console))
        except GeneratorError as exc:  # one failed answer does not end the session
            console.print(f"\n[red]error:[/red] {exc}")
            continue
        for citation in answer.citations or answer.sources[:3]:
            console.print(f"  [dim]{citation_line(citation)}[/dim]")
        if screened is not None and screened.blocked:
            earlier.blocked_before, earlier.dropped = True, earlier.dropped + 2
        else:
            earlier.history += [prompt.Turn("user", asked), prompt.Turn("assistant", answer.text)]


async def _ask(service: ChatService, request: ChatRequest, console: Console):
    console.print("[bold green]assistant>[/bold green] ", end="")
    async for event in service.stream(request):
        if isinstance(event, TokenEvent):
            console.print(event.text, end="", markup=False, highlight=False)
        elif isinstance(event, FinalEvent):
            console.print()
            return event.answer
    raise RuntimeError("no answer")
