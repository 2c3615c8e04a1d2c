"""`happysad demo` trains under the training lock, as `happysad train` and the scheduled retrain
do: a demo started while another training runs waits for it."""

import threading


from db.locks import TRAINING_LOCK, held_lock
from db.session import get_engine
from happysad.commands.demo import _ensure_model
from tests.helpers.polling import wait_until
from trainer.dataset import DatasetError


def test_the_demo_waits_for_the_training_lock(tmp_path, capsys):
    folder = tmp_path / "train"  # no images: the training, once reached, refuses at once
    for name in ("happy", "sad"):
        (folder / name).mkdir(parents=True)
    held, release = threading.Event(), threading.Event()

    def another_training():
        with held_lock(get_engine(), TRAINING_LOCK):
            held.set()
            release.wait(120)

    holder = threading.Thread(target=another_training)
    holder.start()
    assert held.wait(60)
    outcome = []
    demo = threading.Thread(target=lambda: outcome.append(_catch(_ensure_model, folder)))
    demo.start()
    said = []
    wait_until(lambda: said.append(capsys.readouterr().err) or "waiting" in "".join(said),
               "the demo saying it waits for the other training")
    assert not outcome  # still waiting: it has not trained
    release.set()
    holder.join(60)
    demo.join(120)
    assert isinstance(outcome[0], DatasetError)  # it went on to train once the lock was free


def _catch(function, *args):
    try:
        return function(*args)
    except Exception as error:
        return error
