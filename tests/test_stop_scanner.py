from assistant.runtime.stops import StopScanner


def run(pieces, stops):
    scanner = StopScanner(stops)
    out = [scanner.feed(p) for p in pieces]
    return "".join(out) + scanner.flush(), scanner.stopped


def test_stop_split_across_pieces_is_never_emitted():
    assert run(["Twelve weeks [1].", "\nQues", "tion: next"], ["\nQuestion:"]) == ("Twelve weeks [1].", True)


def test_held_back_prefix_is_released_when_it_was_not_a_stop():
    assert run(["a\nQu", "iet b"], ["\nQuestion:"]) == ("a\nQuiet b", False)
    assert run(["ends with \nQue"], ["\nQuestion:"]) == ("ends with \nQue", False)


def test_earliest_of_several_stops_wins_and_nothing_follows():
    scanner = StopScanner(["\nUser:", "\n\n\n"])
    assert scanner.feed("x\n\n\nmore\nUser:") == "x"
    assert scanner.feed("later") == "" and scanner.flush() == ""


# --- repeated lines (assistant/runtime/repeats.py) -----------------------------------------------------------------
LOOP = ("Members must:\n1. Be aware of the plan's benefits and limits.\n2. Use in-network providers when possible.\n"
        "3. Be aware of the plan's benefits and limits.\n4. Use in-network providers when possible.\n5. Be")


def stream_chars(text, stops=(), repeats=True):
    """Fed one character at a time, as a tokenizer may split it: the worst case for holding back."""
    scanner = StopScanner(list(stops), repeats)
    out = [scanner.feed(c) for c in text]
    return out, "".join(out) + scanner.flush(), scanner.stopped


def test_a_repeated_numbered_line_ends_the_answer_and_none_of_it_is_emitted():
    pieces, text, stopped = stream_chars(LOOP)
    assert stopped and text == "Members must:\n1. Be aware of the plan's benefits and limits.\n2. Use in-network providers when possible."
    assert "3." not in "".join(pieces)


def test_without_repeats_the_scanner_passes_loops_through():
    assert run([LOOP], []) == (LOOP, False)


def test_lines_that_only_start_alike_are_emitted_whole():
    text = "You can appeal in writing to the plan.\nYou can appeal in writing to the state insurance commission.\nDone."
    assert stream_chars(text)[1:] == (text, False)


def test_short_lines_may_recur():
    text = "Steps:\nCall HR.\nStep two:\nCall HR.\nThat is all you need to do."
    assert stream_chars(text)[1:] == (text, False)


def test_a_paragraph_repeated_under_a_citation_tag_is_cut():
    first = "Northwind Health Plus covers out-of-area services for members living abroad."
    assert stream_chars(f"{first}\n[1] {first}\n[2] {first}")[1:] == (first, True)


def test_a_loop_cut_by_the_token_cap_drops_its_partial_repeat():
    # The cap ends the answer inside the second copy: that start of an earlier line is the loop, not an answer.
    text = "The deductible is 500 dollars per year for each member.\nThe deductible is 500 dollars per"
    assert stream_chars(text)[1:] == ("The deductible is 500 dollars per year for each member.", False)


def test_repeats_and_stop_sequences_together():
    text = "Yes, hormone therapy is covered by the plan.\nAnswer: Yes, hormone therapy is covered by the plan."
    assert stream_chars(text, ["\nAnswer:"])[1:] == ("Yes, hormone therapy is covered by the plan.", True)
    loop = "The plan covers hormone therapy and surgery.\nThe plan covers hormone therapy and surgery.\nQuestion: x"
    assert stream_chars(loop, ["\nQuestion:"])[1:] == ("The plan covers hormone therapy and surgery.", True)
