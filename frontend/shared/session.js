// The API key lives in sessionStorage: it survives a reload of the tab and is gone when the tab closes.
// Each page has its own slot, so signing in to the admin page does not sign the chat page in as admin.

export class Session {
  constructor(slot) {
    this.slot = `ragtune.${slot}.key`;
  }

  get key() {
    try {
      return sessionStorage.getItem(this.slot) || "";
    } catch {
      return ""; // storage disabled: the user signs in again on each load
    }
  }

  set key(value) {
    try {
      if (value) sessionStorage.setItem(this.slot, value);
      else sessionStorage.removeItem(this.slot);
    } catch {
      /* storage disabled: the key lives only in memory for this page */
    }
  }

  clear() {
    this.key = "";
  }
}
