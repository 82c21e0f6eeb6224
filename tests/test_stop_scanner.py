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
