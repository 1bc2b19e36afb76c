// In-page verification of a resource version, computed in this browser with Web Crypto, as
// `annexa verify-bundle` computes it (collector/ledger.py, collector/bundle_verify.py):
// evidence digest -> RFC 6962 inclusion proof -> the run's Merkle root -> chain hash of the
// run header -> link to the run before -> Ed25519 signature against a pasted public key.
// The server sends material only (/proof/<version>, /evidence/<digest>), never a verdict.
"use strict";

(function () {
  const PIN = "annexa.publicKey";
  const encoder = new TextEncoder();

  function hex(bytes) {
    return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function unhex(text) {
    if (typeof text !== "string" || !/^([0-9a-f]{2})*$/.test(text)) {
      throw new Error("not hexadecimal: " + String(text).slice(0, 80));
    }
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i += 1) {
      out[i] = parseInt(text.substr(i * 2, 2), 16);
    }
    return out;
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  // collector/canonical.py: sorted keys, no whitespace, strings as Python's json writes them
  // with ensure_ascii off (JSON.stringify escapes the same characters the same way).
  function canonical(value) {
    if (value === null) {
      return "null";
    }
    if (Array.isArray(value)) {
      return "[" + value.map(canonical).join(",") + "]";
    }
    if (typeof value === "object") {
      return "{" + Object.keys(value).sort()
        .map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
    }
    return JSON.stringify(value);
  }

  async function resourceLeaf(key, digest) {
    const text = '["resource",' + JSON.stringify(key) + "," + JSON.stringify(digest) + "]";
    return sha256(concat(new Uint8Array([0]), encoder.encode(text)));
  }

  // ledger.verify_inclusion()
  async function foldProof(leaf, index, size, path) {
    let node = leaf;
    const steps = path.slice();
    while (size > 1) {
      if (index % 2 === 1) {
        if (!steps.length) {
          return null;
        }
        node = await sha256(concat(new Uint8Array([1]), unhex(steps.shift()), node));
      } else if (index + 1 < size) {
        if (!steps.length) {
          return null;
        }
        node = await sha256(concat(new Uint8Array([1]), node, unhex(steps.shift())));
      }
      index = Math.floor(index / 2);
      size = Math.floor((size + 1) / 2);
    }
    return steps.length ? null : hex(node);
  }

  function pemBody(text) {
    const match = /-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/.exec(text);
    if (!match) {
      throw new Error("not a PEM public key (-----BEGIN PUBLIC KEY-----)");
    }
    const raw = atob(match[1].replace(/\s+/g, ""));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  async function ed25519Available() {
    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      return false;
    }
    try {
      await crypto.subtle.importKey("raw", new Uint8Array(32), { name: "Ed25519" }, false,
        ["verify"]);
      return true;
    } catch (err) {
      return err.name !== "NotSupportedError";
    }
  }

  async function signatureStep(material, pem) {
    const run = material.run;
    if (!pem.trim()) {
      return ["skipped", "no public key pasted: the signature was not checked"];
    }
    const der = pemBody(pem);
    const keyId = hex(await sha256(der.slice(der.length - 32)));
    if (keyId !== run.key_id) {
      return ["broken", "the run was signed by key " + run.key_id + ", not by the pasted key " +
        keyId];
    }
    let key;
    try {
      key = await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, false, ["verify"]);
    } catch (err) {
      if (err.name === "NotSupportedError") {
        return ["skipped", "this browser has no Ed25519 in Web Crypto: the signature was not " +
          "checked (use `annexa verify-bundle`)"];
      }
      throw err;
    }
    const good = await crypto.subtle.verify({ name: "Ed25519" }, key, unhex(run.signature),
      unhex(run.chain_hash));
    return good ? ["ok", "valid Ed25519 signature by key " + keyId]
      : ["broken", "the signature is not valid for the pasted key " + keyId];
  }

  async function steps(material, evidence, pem) {
    const out = [];
    const header = material.run.header;
    const add = (id, name, result) => out.push({ id, name, state: result[0], text: result[1] });

    if (evidence.status === 410) {
      add("digest", "Evidence digest", ["skipped", "the body was pruned by retention"]);
    } else if (!evidence.ok) {
      add("digest", "Evidence digest", ["broken", "the evidence could not be read (HTTP " +
        evidence.status + ")"]);
    } else {
      const digest = hex(await sha256(new Uint8Array(await evidence.arrayBuffer())));
      add("digest", "Evidence digest", digest === material.digest
        ? ["ok", "SHA-256 of the evidence is " + digest]
        : ["broken", "SHA-256 of the evidence is " + digest + ", not the recorded " +
          material.digest]);
    }

    const proof = material.proof;
    if (!proof) {
      add("proof", "Inclusion proof", ["broken", "the version is not among the leaves of run " +
        header.run + ": no proof"]);
    } else {
      const leaf = await resourceLeaf(material.key, material.digest);
      const root = await foldProof(leaf, proof.index, proof.size, proof.path);
      add("proof", "Inclusion proof to the Merkle root of run " + header.run,
        root === header.merkle_root
          ? ["ok", "leaf " + proof.index + " of " + proof.size + " folds to the root " + root]
          : ["broken", "the proof folds to " + root + ", not the run's root " +
            header.merkle_root]);
    }

    const chain = hex(await sha256(encoder.encode(canonical(header))));
    add("header", "Run header to its chain hash", chain === material.run.chain_hash
      ? ["ok", "SHA-256 of the run header is the chain hash " + chain]
      : ["broken", "SHA-256 of the run header is " + chain + ", not the recorded chain hash " +
        material.run.chain_hash]);

    if (header.seq === 1) {
      add("link", "Chain link", header.prev === material.genesis
        ? ["ok", "run #1 starts from the genesis hash"]
        : ["broken", "run #1 does not start from the genesis hash"]);
    } else if (!material.previous) {
      add("link", "Chain link", ["broken", "run #" + (header.seq - 1) + " is missing"]);
    } else {
      const before = hex(await sha256(encoder.encode(canonical(material.previous.header))));
      add("link", "Chain link to run #" + (header.seq - 1),
        before === material.previous.chain_hash && header.prev === before
          ? ["ok", "the header names the chain hash of run #" + (header.seq - 1) + ", " + before]
          : ["broken", "the header names " + header.prev + "; run #" + (header.seq - 1) +
            " hashes to " + before]);
    }

    try {
      add("signature", "Signature", await signatureStep(material, pem));
    } catch (err) {
      add("signature", "Signature", ["broken", String(err.message || err)]);
    }
    return out;
  }

  function show(list, items) {
    list.replaceChildren();
    for (const item of items) {
      const li = document.createElement("li");
      li.dataset.step = item.id;
      li.dataset.state = item.state;
      const state = document.createElement("span");
      state.className = item.state;
      state.textContent = item.state === "ok" ? "OK" : item.state === "broken" ? "BROKEN"
        : "NOT CHECKED";
      li.append(state, " " + item.name + ": " + item.text);
      list.append(li);
    }
    const broken = items.find((i) => i.state === "broken");
    const summary = document.createElement("li");
    summary.className = "summary";
    summary.dataset.result = broken ? "broken" : "intact";
    summary.textContent = broken ? "Broken at: " + broken.name
      : items.some((i) => i.state === "skipped") ? "Intact as far as checked (see above)"
        : "Intact: every step holds";
    list.append(summary);
  }

  async function verify(button, keyBox) {
    const list = document.getElementById(button.dataset.target);
    list.replaceChildren();
    const pending = document.createElement("li");
    pending.textContent = "Verifying…";
    list.append(pending);
    try {
      const response = await fetch(button.dataset.proof, { credentials: "same-origin" });
      if (!response.ok) {
        throw new Error("the proof material could not be read (HTTP " + response.status + ")");
      }
      const material = await response.json();
      const evidence = await fetch(material.evidence_url, { credentials: "same-origin" });
      show(list, await steps(material, evidence, keyBox.value));
    } catch (err) {
      show(list, [{ id: "material", name: "Proof material", state: "broken",
        text: String(err.message || err) }]);
    }
  }

  async function start() {
    const keyBox = document.getElementById("public-key");
    const pin = document.getElementById("pin-key");
    const support = document.getElementById("crypto-support");
    if (!keyBox) {
      return;
    }
    const pinned = window.localStorage.getItem(PIN);
    if (pinned) {
      keyBox.value = pinned;
      pin.checked = true;
    }
    const save = () => {
      if (pin.checked) {
        window.localStorage.setItem(PIN, keyBox.value);
      } else {
        window.localStorage.removeItem(PIN);
      }
    };
    pin.addEventListener("change", save);
    keyBox.addEventListener("change", save);
    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      support.textContent = "This page is not a secure context (HTTPS or localhost), so the " +
        "browser offers no Web Crypto: verification is not available here.";
      return;
    }
    support.textContent = (await ed25519Available())
      ? "This browser has SHA-256 and Ed25519 in Web Crypto: every step can be checked."
      : "This browser has no Ed25519 in Web Crypto: every step but the signature is checked.";
    for (const button of document.querySelectorAll("button.verify")) {
      button.addEventListener("click", () => verify(button, keyBox));
    }
  }

  document.addEventListener("DOMContentLoaded", start);
}());
