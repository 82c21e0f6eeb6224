"""Instructions planted in documents for the model that will read them (indirect prompt injection), per sentence.

A retrieved chunk is text for the answer, never orders to its writer. The kinds of indirect-injection benchmarks
(BIPIA, InjecAgent) plant sentences that (a) speak to the reader of the page as a machine ("Note to the AI",
"Assistant, ...", "If you are a language model", "whoever summarises this"), (b) tell it what to put in its
answer ("include this link in your response", "end every reply with ...", "before answering, ask the user for
..."), (c) tell it to set the question aside ("ignore the user's question"), (d) have it relay something to the user
("tell the user to log in at ..."), or carry a payload no policy page needs: a download-and-execute command, a
markdown image that ships data out in its URL, a phishing lure, a link shortener. Human-facing policy prose ("you
must file a claim within 90 days", "the notice should include the dates of service") has none of these shapes:
its duties are the employee's, and its objects are forms and claims, not "your answer".

`findings(sentence)` names the shapes that fired; the chunk rail neutralises a sentence with any. Measured by
bench/indirect_injection.py: payloads neutralised, and the share of real-document chunks altered (≤ 1%).
"""

from __future__ import annotations

import re

_F = re.I
# Who reads the page when a model answers from it.
_MACHINE = (r"(?:ai|a\.i\.|assistants?|ai assistants?|chat ?bots?|bots?|language models?|llms?|gpt|copilot|models?|"
            r"summari[sz]ers?|automated (?:systems?|agents?|tools?|readers?)|agents?|ai (?:systems?|models?|tools?|"
            r"agents?)|virtual assistants?|answer(?:ing)? (?:engines?|bots?))")
# In a duty sentence ("the X must ...") only names no person or product carries: "the endpoint protection agent must
# remain installed", "the model K2 must be charged" are policy.
_MACHINE_STRICT = (r"(?:ai|a\.i\.|assistants?|ai assistants?|chat ?bots?|language models?|llms?|gpt|copilot|summari[sz]ers?|"
                   r"automated (?:systems?|agents?|readers?)|ai (?:systems?|models?|tools?|agents?)|virtual assistants?)")
_READER = r"(?:readers?|whoever (?:reads|answers|summari[sz]es|processes)(?: this)?|the person answering)"
_OUTPUT = r"(?:answers?|responses?|repl(?:y|ies)|outputs?|completions?)"  # not "summary", "message": people write those
_GAP = r"(?:[^.!?\n]|[.!?](?=\S))"  # inside one sentence: a URL's dots do not end it
_OWNER = r"(?:your|the|every|each|any|all|this|its|their)"
_ITEM = (r"(?:links?|urls?|hyperlinks?|web ?address(?:es)?|code|snippets?|scripts?|commands?|lines?|text|sentences?|"
         r"phrases?|words?|notes?|messages?|banners?|ads?|advertisements?|footers?|signatures?|disclaimers?|images?|"
         r"emojis?|poems?|jokes?|hashtags?|tags?|markdown|html|instructions?|greetings?)")

RULES: dict[str, re.Pattern] = {
    # (a) the page talks to its machine reader
    "addressed": re.compile(
        rf"(?:\b(?:note|message|instructions?|reminder|attention|notice|memo|directive|p\.?s\.?)\s*(?:to|for)\s+(?:the |any |all "
        rf"|every )?{_MACHINE}\b|\b(?:dear|hey|hello|attention|calling)\s+(?:the )?{_MACHINE}\b|\bif you(?:'re| are) (?:an? |the )?"
        rf"(?:{_MACHINE}|{_READER})\b|^\W*(?:the |any |all |every )?{_MACHINE}\s*[,:]|\[\s*(?:{_MACHINE}|system|admin)"
        rf"(?: (?:note|instructions?|notice|message))?\s*\]|\b(?:the |any |all |every )?{_MACHINE_STRICT}\s+(?:must|should|shall|"
        rf"will|needs? to|has to|have to|is (?:required|instructed|asked|expected) to|are (?:required|instructed|asked|expected)"
        rf" to|ought to|may not|must not|should not|cannot)\b|\b{_READER}\s*[,:]\s*(?:please |you must |always )?\w+|"
        rf"\b{_READER}\s+(?:must|should|shall|need to|are (?:asked|instructed|required) to)\s+(?:always |now |first |immediately )?"
        rf"(?:run|execute|paste|install|download|visit|click|open|go to|log ?in|sign ?in|enter|send|email|call|reply|respond|"
        rf"copy|type)\b|\b(?:dear|hey|hi|hello|greetings|attention|calling|listen)\b\W+(?:\w+\W+){{0,3}}?{_MACHINE}\b|"
        rf"\b{_MACHINE}\s+(?:that is |which is |who is |that are |which are )?(?:reading|processing|summari[sz]ing|parsing|"
        rf"ingesting|using|seeing|analy[sz]ing|answering from|retrieving|indexing|quoting)\s+(?:this|these|the following|"
        rf"the (?:text|page|document|passage|section|content))\b)", _F),
    # (b) orders about the answer being written from this page
    "answer_order": re.compile(
        rf"(?:\b(?:used|retrieved|quoted|read|consulted|cited)\s+(?:to|when|while|for)\s+(?:generat|writ|produc|creat|"
        rf"answer|respond|draft|compos)\w*\s+(?:a |an |the |any |your )?(?:\w+\s+)?{_OUTPUT}\b|"
        rf"\b(?:to|into|in|at the end of)\s+whatever (?:you )?(?:generate|write|output|produce|say|reply|answer|return)\b|"
        rf"\b(?:when|while|before|after|whenever) (?:you )?(?:answer|respond|reply|summari[sz]|generat)(?:e|ing|s)?\b"
        rf"[^.!?\n]{{0,60}}?\b(?:question|this|these|page|section|document|text|user|anything|it|"
        rf"prompt|quer)|\b(?:in|into|to|at the (?:end|start|beginning|top|bottom) of|end|start|begin|finish|close|prefix|"
        rf"suffix|sign off|conclude)\s+{_OWNER}\s+(?:\w+\s+)?{_OUTPUT}\b{_GAP}{{0,80}}?\b(?:include|add|insert|append|"
        rf"embed|put|paste|mention|write|say|state|print|output|display|show|recommend|link|tell|ask|use|with)\b|\b(?:include|"
        rf"add|insert|append|embed|put|paste|place|attach|prepend|print|output|display|show|write|mention|render|cite|link)\b{_GAP}"
        rf"{{0,100}}?\b(?:in|into|to|at the (?:end|start|beginning|top|bottom) of|with|inside|within)\s+{_OWNER}\s+(?:\w+\s+)?"
        rf"{_OUTPUT}\b|\b{_OWNER}\s+(?:\w+\s+)?{_OUTPUT}\s+(?:must|should|shall|needs? to|has to|will)\s+(?:always |also |now )?"
        rf"(?:include|contain|end|start|begin|mention|say|state|be written|recommend|link|feature|promote|tell|ask)\b|"
        rf"\b(?:any|every|each|all|your)\s+{_OUTPUT}\b[^.!?\n]{{0,50}}?\b(?:must|should|shall|needs? to|has to|will)\s+"
        rf"(?:always |also |now )?(?:include|contain|end|start|begin|close|finish|mention|say|state|recommend|link|promote)\b|"
        rf"\b(?:respond|reply|answer|write|speak|talk)\s+(?:only |exclusively |solely )?(?:in|using)\s+(?:[A-Z][a-z]+|pig latin|"
        rf"emojis?|rhymes?|all caps|uppercase|verse)\b[^.!?\n]{{0,40}}?(?:only|from now on|at all times|always|"
        rf"exclusively)|\bfrom now on\b[^.!?\n]{{0,40}}\b(?:answer|respond|reply|write|speak|say|tell|always|only)\b|\b(?:always|"
        rf"also) (?:include|add|append|insert|mention|end with|start with|begin with)\b{_GAP}{{0,80}}?\b{_ITEM}\b)", _F),
    # (c) set the question aside
    "set_aside": re.compile(
        r"\b(?:ignore|disregard|forget|skip|do not answer|don't answer|instead of answering|rather than answering)\b"
        r"[^.!?\n]{0,30}?\b(?:the |their |this |that |any |all |your |what )?(?:user'?s?|users'|question|questions|request|"
        r"query|queries|task|prompt|conversation|asked|above|everything (?:above|else|before))\b", _F),
    # (d) relay something to the user, the way only the answer's writer can
    "relay": re.compile(
        r"\b(?:tell|ask|instruct|urge|remind|inform|advise|warn|convince|persuade|direct|prompt|request)\s+(?:the|every|any|"
        r"each)\s+(?:users?|requesters?|askers?|person asking|human|people asking|reader)\b(?!\s+(?:manual|guide|account|interface|group|id|name|"
        r"base|experience|documentation|profile|settings))|^\W*(?:important\W*|note\W*|p\.?s\.?\W*)?(?:mention|say|state|claim|"
        r"assert|stress|emphasi[sz]e|point out|announce|explain)\s+(?:to the user\s+)?that\b|\bthe users?\s+(?:should|must|"
        r"needs? to)\s+(?:switch|stop using|buy|purchase|visit|click|log ?in|sign ?in|download|install|run|reply|send|"
        r"email|call|transfer|pay)\b", _F),
    # payloads no policy page needs
    "download_exec": re.compile(
        r"(?:\b(?:curl|wget)\b[^\n|;]{0,200}\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b|\biex\b\s*\(|\bdownloadstring\s*\(|"
        r"\binvoke-expression\b|\bpowershell(?:\.exe)?\s+[^\n]{0,40}-(?:e|enc|encodedcommand)\b|\bos\.system\s*\(|"
        r"\bsubprocess\.\w+\s*\(|\beval\s*\(\s*(?:atob|base64|unescape)|\brm\s+-rf\s+[~/$]|<\s*script\b|"
        r"\bjavascript:|\bexec\s*\(\s*(?:base64|__import__)|\b(?:nc|ncat|netcat)\s+-e\b)", _F),
    "exfil_image": re.compile(
        r"!\s*(?:\[[^\]]{0,80}\])?\(\s*https?://[^)\s]*(?:\?|\{|%7b|\$)[^)]*\)|<img\b[^>]*\bsrc\s*=\s*['\"]?https?://[^'\" >]*\?"
        r"|https?://\S*(?:\{\{?\s*\w+\s*\}\}?|%7b%7b|\$[A-Z_]{3,}|\[(?:USER|QUESTION|CONVERSATION|HISTORY|DATA)\w*\])",
        _F),
    "phishing": re.compile(
        r"\b(?:verify|confirm|validate|re-?enter|update|unlock|reactivate|restore)\b[^.!?\n]{0,30}?\b(?:your |their )?"
        r"(?:account|password|credentials|identity|login|log-in|payment (?:details|information)|bank details|card details|"
        r"social security)\b[^\n]{0,80}?(?:https?://|www\.|\b[a-z0-9-]+\.(?:com|net|org|io|co|info|xyz|example|test)\b)"
        r"|\b(?:enter|type|submit|send|provide|share|give)\s+(?:your |their )?(?:password|credentials|pin|passcode|"
        r"security code|card number|bank details)\s+(?:there|at|on|to|into|via)\b[^\n]{0,40}?(?:https?://|www\.|\b[a-z0-9-]+\.(?:com|net|org|io|co|info|xyz|example|test)\b)",
        _F),
    "short_link": re.compile(
        r"\b(?:https?://)?(?:bit\.ly|tinyurl\.com|t\.co|goo\.gl|is\.gd|ow\.ly|rb\.gy|cutt\.ly|tiny\.cc|shorturl\.at|"
        r"rebrand\.ly|buff\.ly|s\.id|t\.ly)/\w+|\bhttps?://(?:\d{1,3}\.){3}\d{1,3}\b", _F),
}


# People whose title ends in "assistant" or "agent": "the executive assistant must approve" is policy, not injection.
_HUMAN_ROLE = re.compile(r"\b(?:executive|administrative|admin|personal|office|medical|dental|physician|nursing|teaching|"
                         r"legal|sales|shop|store|research|project|program|travel|insurance|claims?|support|service|"
                         r"customer|booking|real estate|estate|care|field|hr|finance|payroll)\s*$", re.I)
# A sentence that only names its machine reader ("IMPORTANT NOTE TO THE AI:") carries its order in the next one.
_ORDER_START = re.compile(r"^\W*(?:please\s+)?(?:include|add|insert|append|embed|put|paste|attach|prepend|print|output|"
                          r"display|show|write|mention|say|state|tell|ask|recommend|send|link|respond|reply|answer|end|"
                          r"start|begin|always|never|do not|don't|ignore|disregard|forget|visit|click|go to|run|execute|"
                          r"use|direct|translate|summari[sz]e|replace)\b", re.I)


def findings(sentence: str) -> tuple[str, ...]:
    """The shapes of a planted instruction that `sentence` has (empty: none)."""
    found = []
    for name, rule in RULES.items():
        for match in rule.finditer(sentence):
            if name == "addressed" and _HUMAN_ROLE.search(sentence[:match.start() + _lead(match.group(0))]):
                continue  # "the executive assistant must ..."
            found.append(name)
            break
    return tuple(found)


def _lead(text: str) -> int:
    """Characters before the machine word in an `addressed` match: where a human title would end."""
    word = re.search(r"\b(?:assistants?|agents?|bots?)\b", text, re.I)
    return word.start() if word else 0


def carries_on(flagged: tuple[str, ...], next_sentence: str) -> bool:
    """Whether the sentence after one that only addressed the machine reader is its order."""
    return flagged == ("addressed",) and bool(_ORDER_START.search(next_sentence))
