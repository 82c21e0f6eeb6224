// The sign-in form both pages share: check a key with GET /v1/me, keep it in sessionStorage, report why not.

import { ErrorAlert } from "./alert.js";

export class SignIn {
  /**
   * @param {{view: HTMLElement, form: HTMLFormElement, input: HTMLInputElement, alert: HTMLElement}} els
   * @param {import("./session.js").Session} session
   * @param {import("./api.js").ApiClient} client
   * @param {(me: object) => string|null} accept returns a reason to refuse a valid key (e.g. no admin scope)
   */
  constructor(els, session, client, accept = () => null) {
    Object.assign(this, els, { session, client, accept });
    this.errors = new ErrorAlert(els.alert);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(this.input.value.trim());
    });
  }

  show(error = null) {
    this.view.hidden = false;
    this.input.value = "";
    if (error) this.errors.show(error);
    else this.errors.clear();
    this.input.focus();
  }

  hide() {
    this.view.hidden = true;
    this.errors.clear();
  }

  /** The stored key's owner, or null (the form is shown, with the reason when there is one). */
  async resume() {
    if (!this.session.key) {
      this.show();
      return null;
    }
    return this.check(this.session.key, true);
  }

  async submit(key) {
    if (!key) {
      this.errors.show({ kind: "invalid", message: "Enter an API key." });
      this.input.focus();
      return null;
    }
    return this.check(key, false);
  }

  async check(key, quiet) {
    this.client.key = key;
    try {
      const me = await this.client.get("/v1/me");
      const refusal = this.accept(me);
      if (refusal) throw Object.assign(new Error(refusal), { kind: "forbidden" });
      this.session.key = key;
      this.hide();
      this.onSignedIn(me);
      return me;
    } catch (error) {
      this.session.clear();
      this.client.key = "";
      if (quiet && error.kind !== "unauthorized") this.show();
      else if (error.kind === "unauthorized") {
        this.show(error);
        if (!quiet) this.errors.show(error, null, { title: "This key was not accepted", detail: "It is unknown or has been revoked. Check that you pasted all of it." });
      } else {
        this.show();
        this.errors.show(error, () => this.check(key, quiet));
      }
      return null;
    }
  }

  /** Replaced by the page: called with GET /v1/me's answer once a key is accepted. */
  onSignedIn() {}
}
