// API keys: create (the plaintext is shown once, with a copy button), list, revoke.

import { h, when } from "../shared/dom.js";
import { badge, fillTable } from "./table.js";

const $ = (id) => document.getElementById(id);
const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

export class Keys {
  constructor(client, fail, me) {
    this.client = client;
    this.fail = fail;
    this.me = me;
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    $("copy-key").addEventListener("click", async () => {
      const value = $("new-key-value").value;
      try {
        await navigator.clipboard.writeText(value);
        $("copy-key-status").textContent = "Copied.";
      } catch {
        $("new-key-value").select();
        $("copy-key-status").textContent = "Press Ctrl+C to copy the selected key.";
      }
    });
  }

  async load() {
    const { keys } = await this.client.get("/v1/keys");
    fillTable($("keys-table"), "API keys", ["Name", "Prefix", "Scopes", "Collections", "Origins", "Created", "Last used", "Status", ""],
      keys.map((k) => [
        k.name, h("code", {}, k.prefix), k.scopes.join(", "), k.all_collections ? "all" : k.collections.join(", "),
        (k.allowed_origins || []).join(", "), when(k.created_at), when(k.last_used_at) || "never",
        k.revoked_at ? badge("revoked") : badge("active"),
        k.revoked_at || k.id === this.me.key_id ? "" : h("button", {
          type: "button", class: "danger small", "aria-label": `Revoke the key ${k.name}`, onclick: () => this.revoke(k),
        }, "Revoke"),
      ]), "No keys.");
  }

  async create() {
    const name = $("key-name").value.trim();
    const scopes = [...document.querySelectorAll("input[name=scope]:checked")].map((box) => box.value);
    const collections = list($("key-collections").value);
    const origins = list($("key-origins").value);
    if (!name || !scopes.length) {
      this.fail({ kind: "invalid", message: name ? "Choose at least one scope." : "Give the key a name." });
      (name ? document.querySelector("input[name=scope]") : $("key-name")).focus();
      return;
    }
    const body = { name, scopes, ...(collections.length ? { collections } : { all_collections: true }),
      ...(origins.length ? { allowed_origins: origins } : {}) };
    try {
      const created = await this.client.post("/v1/keys", body);
      $("new-key").hidden = false;
      $("new-key-value").value = created.api_key;
      $("copy-key-status").textContent = "";
      $("key-form").reset();
      $("new-key-value").focus();
      $("new-key-value").select();
      await this.load();
    } catch (error) {
      this.fail(error, () => this.create());
    }
  }

  async revoke(key) {
    if (!window.confirm(`Revoke the key “${key.name}”? Everything using it stops working at once.`)) return;
    try {
      await this.client.delete(`/v1/keys/${encodeURIComponent(key.id)}`);
      await this.load();
      $("keys-title").focus();
    } catch (error) {
      this.fail(error, () => this.revoke(key));
    }
  }
}
