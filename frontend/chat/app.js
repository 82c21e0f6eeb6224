// The chat page: sign-in, then the conversation list, the thread and the question box wired together.

import { ErrorAlert } from "../shared/alert.js";
import { ApiClient } from "../shared/api.js";
import { Session } from "../shared/session.js";
import { SignIn } from "../shared/signin.js";
import { CitationDialog } from "./citations.js";
import { History } from "./history.js";
import { Pickers } from "./pickers.js";
import { Thread } from "./thread.js";

const $ = (id) => document.getElementById(id);
const session = new Session("chat");

class ChatPage {
  constructor() {
    this.client = new ApiClient({ key: session.key });
    this.signIn = new SignIn(
      { view: $("signin-view"), form: $("signin-form"), input: $("api-key"), alert: $("signin-alert") },
      session, this.client,
    );
    this.signIn.onSignedIn = (me) => this.enter(me);
    this.alert = new ErrorAlert($("chat-alert"));
    this.conversationId = null;
    this.abort = null;
    this.dialog = new CitationDialog($("citation-dialog"), this.client);
    this.thread = new Thread($("messages"), this.client, this.dialog);
    this.pickers = new Pickers($("model-picker"), $("collection-picker"), this.client);
    this.history = new History($("conversation-list"), $("history-empty"), this.client, {
      open: (id) => this.openConversation(id),
      deleted: (id) => id === this.conversationId && this.newChat(),
      failed: (error, retry) => this.fail(error, retry),
    });
    this.bind();
  }

  bind() {
    $("signout").addEventListener("click", () => this.signOut());
    $("new-chat").addEventListener("click", () => this.newChat());
    $("ask-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask();
    });
    $("question").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.ask();
      }
    });
    $("stop").addEventListener("click", () => this.abort && this.abort.abort());
    $("toggle-history").addEventListener("click", () => this.toggleHistory());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && document.body.classList.contains("history-open")) this.toggleHistory(false);
    });
  }

  start() {
    return this.signIn.resume();
  }

  /** A key was accepted: the chat view, its pickers and the conversation list. */
  async enter(me) {
    $("who").textContent = `Signed in as ${me.name}`;
    $("chat-view").hidden = false;
    this.newChat();
    await Promise.all([this.pickers.load(), this.history.load()]).catch((error) => this.fail(error, () => this.enter(me)));
  }

  signOut(error = null) {
    this.abort && this.abort.abort();
    session.clear();
    this.client.key = "";
    this.thread.clear();
    this.history.clear();
    this.alert.clear();
    $("chat-view").hidden = true;
    this.signIn.show(error);
  }

  /** One place for failures: a revoked key goes back to sign-in, the rest show an alert with Retry. */
  fail(error, retry) {
    if (error && error.name === "AbortError") return;
    if (error && error.kind === "unauthorized") {
      this.signOut(error);
      return;
    }
    this.alert.show(error, retry);
  }

  newChat() {
    this.abort && this.abort.abort();
    this.conversationId = null;
    this.thread.clear();
    this.alert.clear();
    this.history.select(null);
    $("thread-title").textContent = "New chat";
    this.toggleHistory(false);
    $("question").focus();
  }

  async openConversation(id) {
    this.abort && this.abort.abort();
    this.alert.clear();
    try {
      const conversation = await this.client.get(`/v1/conversations/${encodeURIComponent(id)}`);
      this.conversationId = id;
      this.history.select(id);
      $("thread-title").textContent = conversation.title || "Conversation";
      this.thread.showHistory(conversation.messages);
      this.toggleHistory(false);
      $("thread-title").focus();
    } catch (error) {
      this.fail(error, () => this.openConversation(id));
    }
  }

  async ask(text = null) {
    const box = $("question");
    const question = (text ?? box.value).trim();
    if (!question || this.abort) return;
    box.value = "";
    this.alert.clear();
    this.setBusy(true);
    this.abort = new AbortController();
    const body = { message: question, conversation_id: this.conversationId, ...this.pickers.choice() };
    const turn = this.thread.startTurn(question);
    try {
      for await (const event of this.client.streamChat(body, { signal: this.abort.signal })) {
        if (event.type === "token") turn.token(event.text);
        else {
          turn.finish(event.data);
          if (!this.conversationId && event.data.conversation_id) {
            this.conversationId = event.data.conversation_id;
            $("thread-title").textContent = question.slice(0, 80);
          }
        }
      }
      this.history.load().catch(() => {}); // the list is a convenience; the answer is what matters
    } catch (error) {
      turn.fail(error);
      if (error.name !== "AbortError") {
        box.value = question; // nothing typed is lost
        this.fail(error, () => this.ask(question));
      }
    } finally {
      this.abort = null;
      this.setBusy(false);
      if (!this.alert.region.hidden && this.alert.region.querySelector("button.retry:not(:disabled)")) return;
      box.focus();
    }
  }

  setBusy(busy) {
    $("send").disabled = busy;
    $("stop").hidden = !busy;
    $("messages").setAttribute("aria-busy", busy ? "true" : "false");
  }

  toggleHistory(open = !document.body.classList.contains("history-open")) {
    document.body.classList.toggle("history-open", open);
    $("toggle-history").setAttribute("aria-expanded", String(open));
    if (open) $("new-chat").focus();
  }
}

new ChatPage().start();
