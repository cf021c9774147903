"""What every text → mel task shares (Tacotron 2, Mellotron, Flowtron): data, speakers, symbols.

`TextMelTask.build_data` reads the data set, matches its speakers to the model (`fit_speakers`),
holds out a validation set and builds the datasets (`make_dataset`, batched by `collate`).
Checkpoints get the symbol list and the speaker names in id order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from tts.data import SpeakerMap, TextMelDataset, Utterance, collate_text_mel, load_utterances, split_validation
from tts.errors import TrainingError
from tts.train.task import Task, TaskData

__all__ = ["TextMelTask"]


class TextMelTask(Task):
    collate: Callable[[Sequence[Any]], Any] = staticmethod(collate_text_mel)

    def __init__(self, model_config) -> None:
        super().__init__(model_config)
        self.speakers: SpeakerMap | None = None

    def fit_speakers(self, data: Path, speakers: SpeakerMap) -> None:
        """Check the model's speaker count against the data's (a multi-speaker model must match)."""
        n_speakers = self.model_config.n_speakers
        if n_speakers and len(speakers) != n_speakers:
            raise TrainingError(f"{data} has {len(speakers)} speakers but the model is configured for "
                                f"{n_speakers}; pass --set model.n_speakers={len(speakers)}")

    def make_dataset(self, utterances: list[Utterance], cache_dir: Path | None, seed: int) -> TextMelDataset:
        return TextMelDataset(utterances, self.model_config.text, self.model_config.audio, self.speakers,
                              cache_dir=cache_dir, seed=seed)

    def build_data(self, data: Path, cache_dir: Path | None, validation_size: int, seed: int) -> TaskData:
        utterances = load_utterances(data)
        self.speakers = SpeakerMap.from_utterances(utterances)
        self.fit_speakers(data, self.speakers)
        train_items, validation_items = split_validation(utterances, validation_size, seed)
        train = self.make_dataset(train_items, cache_dir, seed)
        validation = self.make_dataset(validation_items, cache_dir, seed)
        return TaskData(train, validation, type(self).collate, train.frame_lengths())

    def symbols(self) -> list[str] | None:
        from text.symbols import symbols_for

        return list(symbols_for(self.model_config.text.symbol_set))

    def checkpoint_metadata(self) -> dict[str, str]:
        return {"speakers": json.dumps(self.speakers.names if self.speakers else [])}
