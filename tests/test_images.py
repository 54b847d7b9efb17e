"""Images to sequences: the captioner learns, attends where the object is, decodes consistently,
saves and loads, reads image files, and `rnnkit caption` refuses bad input in one line."""

import numpy as np
import pytest
import torch

from rnnkit.errors import UsageError
from rnnkit.images import RNNCaptioner
from rnnkit.images.data import as_images, read_image, to_input

SIZE = 32


def _draw(image: np.ndarray, shape: str, r: int, c: int) -> None:
    if shape == "square":
        image[r:r + 6, c:c + 6] = 255
    else:  # a cross
        image[r + 2:r + 4, c:c + 6] = 255
        image[r:r + 6, c + 2:c + 4] = 255


def toy(n: int, seed: int):
    """32 x 32 black images with one white 6 x 6 shape (a square or a cross) anywhere, captioned by
    its name, or with two, one in each half, captioned left to right ("cross square"); and the top
    left corner of the single shapes (None for pairs)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, SIZE, SIZE), np.uint8)
    captions, corners = [], []
    for k in range(n):
        shapes = [["square", "cross"][int(rng.integers(2))] for _ in range(1 + int(rng.integers(2)))]
        if len(shapes) == 1:
            r, c = (int(v) for v in rng.integers(1, SIZE - 7, 2))
            _draw(images[k], shapes[0], r, c)
            corners.append((r, c))
        else:
            for i, shape in enumerate(shapes):
                _draw(images[k], shape, int(rng.integers(1, SIZE - 7)), int(rng.integers(1, 10)) + 16 * i)
            corners.append(None)
        captions.append(" ".join(shapes))
    return images, captions, corners


@pytest.fixture(scope="module")
def captioner():
    images, captions, _ = toy(600, seed=0)
    # two blocks: each grid cell (4 x 4 pixels) sees about 16 x 16 pixels, so to name a shape the
    # decoder has to look near it
    return RNNCaptioner(image_height=SIZE, image_width=SIZE, conv_blocks=2, conv_channels=16, hidden_size=64,
                        embedding_size=8, epochs=40, lr=5e-3, batch_size=32, random_state=0).fit(images, captions)


def test_the_captioner_learns_a_toy_set_to_exact_match(captioner):
    images, captions, _ = toy(100, seed=1)
    assert captioner.score(images, captions) == 1.0
    assert captioner.set_params(beam_size=3).score(images, captions) == 1.0
    captioner.set_params(beam_size=1)


def test_attention_rows_sum_to_one_and_follow_the_object(captioner):
    images, captions, corners = toy(60, seed=2)
    predicted, maps = captioner.predict_with_attention(images)
    near = []
    for caption, weights, corner in zip(predicted, maps, corners):
        assert weights.shape == (len(caption.split()) + 1, SIZE // 4, SIZE // 4)  # a row per token and the end
        np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, atol=1e-5)
        if corner is None:
            continue
        r, c = corner
        first = weights[0]  # before writing the shape's name
        rows, cols = slice(max(0, r // 4 - 1), (r + 6) // 4 + 2), slice(max(0, c // 4 - 1), (c + 6) // 4 + 2)
        near.append(first[rows, cols].sum())  # the weight on the object's cells and their neighbours
    assert len(near) > 20 and np.median(near) > 0.5  # the neighbourhood is at most 16 of the 64 cells


def test_batched_beam_search_equals_one_image_at_a_time_and_greedy_equals_a_plain_loop(captioner):
    images, _, _ = toy(5, seed=3)
    model = captioner.model_.eval()
    x = to_input(torch.from_numpy(images)[:, None], next(model.parameters()).device)  # where it was fitted
    together, maps = model.decode(x, 10, beams=3)
    for b in range(5):
        alone, alone_maps = model.decode(x[b:b + 1], 10, beams=3)
        assert alone == [together[b]]
        torch.testing.assert_close(alone_maps[0], maps[b])
    greedy, _ = model.decode(x, 10, beams=1)
    with torch.no_grad():
        features, keys, state = model.encode(x)
        token, plain = torch.full((5,), model.bos, device=x.device), [[] for _ in range(5)]
        done = torch.zeros(5, dtype=torch.bool, device=x.device)
        for _ in range(10):
            logits, state, _ = model.step(token, state, features, keys)
            token = logits.argmax(1)
            for b in range(5):
                if not done[b] and token[b] != model.eos:
                    plain[b].append(int(token[b]))
            done |= token == model.eos
    assert greedy == plain


def test_save_load_and_image_files_give_the_same_captions(captioner, tmp_path):
    from PIL import Image
    images, _, _ = toy(6, seed=4)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    expected = captioner.predict(images)
    assert captioner.predict(paths) == expected
    captioner.save(tmp_path / "model")
    loaded = RNNCaptioner.load(tmp_path / "model")
    assert loaded.predict(images) == expected
    np.testing.assert_array_equal(read_image(paths[0], SIZE, SIZE, colour=False)[0], images[0])


def test_image_arrays_of_every_accepted_kind_and_clear_errors_for_the_rest():
    grey = np.random.default_rng(0).integers(0, 256, (2, 16, 24)).astype(np.uint8)
    assert as_images(grey, 16, 24, False).shape == (2, 1, 16, 24)
    np.testing.assert_array_equal(as_images(grey / 255.0, 16, 24, False)[:, 0].numpy(), grey)
    colour = as_images(grey, 8, 12, True)  # grey repeated into RGB, then resized
    assert colour.shape == (2, 3, 8, 12) and colour.dtype == torch.uint8
    assert as_images(np.stack([grey] * 3, axis=-1), 16, 24, False).shape == (2, 1, 16, 24)
    for bad, message in [(grey[0, 0], "got an array of shape"), (grey * 2.0, "must lie in"),
                         (grey.astype(int) - 1, "must lie in 0-255"), ("one.png", "not one path"),
                         (np.full((1, 4, 4), np.nan), "finite")]:
        with pytest.raises(ValueError, match=message):
            as_images(bad, 16, 24, False)


def test_files_that_are_not_images_are_refused_by_name(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    for path, message in [(tmp_path / "text.png", "is not an image rnnkit can read"),
                          (tmp_path / "missing.png", "no such image"), (tmp_path, "is not a regular file")]:
        with pytest.raises(UsageError, match=message):
            read_image(path, 8, 8, False)


def _write_set(folder, n: int, seed: int) -> None:
    from PIL import Image
    images, captions, _ = toy(n, seed)
    lines = ["file,caption"]
    for i, (image, caption) in enumerate(zip(images, captions)):
        Image.fromarray(image).save(folder / f"img{i}.png")
        lines.append(f"img{i}.png,{caption}")
    (folder / "images.csv").write_text("\n".join(lines) + "\n")


def test_caption_commands_train_predict_and_draw_attention(cli, tmp_path):
    _write_set(tmp_path, 60, seed=5)
    status, _, err = cli("caption", "train", tmp_path / "images.csv", "--image-col", "file", "--text-col", "caption",
                         "--out", tmp_path / "model", "--image-height", "32", "--image-width", "32", "--epochs", "2",
                         "--hidden-size", "16", "--conv-channels", "4", "--quiet")
    assert status == 0 and err == ""
    status, out, err = cli("caption", "predict", tmp_path / "model", tmp_path / "img0.png", tmp_path / "img1.png",
                           "--attention", tmp_path / "where.png", "--beam-size", "2")
    assert status == 0 and len(out.splitlines()) == 2 and "wrote" in err
    from rnnkit.outputs import written_by_rnnkit
    assert (tmp_path / "where.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and written_by_rnnkit(tmp_path / "where.png")


@pytest.mark.parametrize("case", ["missing_image", "not_an_image", "column", "empty_caption", "wrong_kind",
                                  "predict_missing", "existing_figure", "beam"])
def test_caption_commands_refuse_bad_input_in_one_line(cli, tmp_path, trained_run, case):
    _write_set(tmp_path, 4, seed=6)
    csv = tmp_path / "images.csv"
    train = ["caption", "train", csv, "--image-col", "file", "--text-col", "caption", "--out", tmp_path / "m",
             "--image-height", "16", "--image-width", "16", "--epochs", "1"]
    if case == "missing_image":
        (tmp_path / "img2.png").unlink()
        args, message = train, "does not exist"
    elif case == "not_an_image":
        (tmp_path / "img1.png").write_text("hello")
        args, message = train, "is not an image rnnkit can read"
    elif case == "column":
        args, message = [*train[:4], "picture", *train[5:]], "has no column 'picture'"
    elif case == "empty_caption":
        csv.write_text(csv.read_text().replace(",square", ",").replace(",cross", ",", 1))
        args, message = train, "is empty"
    elif case == "wrong_kind":
        args, message = ["caption", "predict", trained_run, tmp_path / "img0.png"], "not a captioner"
    elif case == "predict_missing":
        args, message = ["caption", "predict", tmp_path / "nothing", tmp_path / "img0.png"], "not a model directory"
    else:
        assert cli(*train, "--quiet")[0] == 0
        if case == "existing_figure":
            (tmp_path / "mine.png").write_bytes(b"my own picture")
            args, message = (["caption", "predict", tmp_path / "m", tmp_path / "img0.png", "--attention",
                              tmp_path / "mine.png"], "was not written by rnnkit")
        else:
            args, message = ["caption", "predict", tmp_path / "m", tmp_path / "img0.png", "--beam-size", "0"], \
                "--beam-size must be >= 1"
    status, out, err = cli(*args)
    assert status == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, err
    if case in ("missing_image", "not_an_image", "column", "empty_caption"):
        assert not (tmp_path / "m").exists()
    if case == "existing_figure":
        assert (tmp_path / "mine.png").read_bytes() == b"my own picture"


def test_a_tampered_model_directory_is_refused_before_anything_is_built(captioner, tmp_path, monkeypatch):
    import json
    from rnnkit import config
    monkeypatch.setattr(config, "available_memory", lambda: 16 * 2**30)  # the encoder below needs about 52 GiB
    captioner.save(tmp_path / "model")
    meta_path = tmp_path / "model" / "rnnkit.json"
    meta = json.loads(meta_path.read_text())
    huge = {**meta, "config": {**meta["config"], "conv_channels": 1024, "conv_blocks": 6, "image_height": 1024,
                               "image_width": 1024}}
    meta_path.write_text(json.dumps(huge))
    with pytest.raises(UsageError, match="would need"):
        RNNCaptioner.load(tmp_path / "model")
    meta_path.write_text(json.dumps({**meta, "fitted": {**meta["fitted"], "grid": [3, 3]}}))
    with pytest.raises(UsageError, match="is corrupted"):
        RNNCaptioner.load(tmp_path / "model")
