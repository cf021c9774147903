"""Growing a trained Tacotron 2 / Mellotron: a narrower model's weights inside a wider one, same output.

A model that has learnt to align but lacks the capacity to speak clearly can be widened instead
of trained again: `grow_state_dict(model, narrow)` embeds a narrower model's state dict in
`model`'s shapes (the attention and decoder LSTMs' units, the postnet's channels). The new units
keep their random incoming weights, but every weight from a new unit to an old one is zero, so
the grown model computes exactly what the narrow one did (tested to float rounding) and training
brings the new units in from there (function-preserving widening, Chen et al. 2016, Net2Net).

Only those three widths may differ; every other shape must match (the same text path, memory,
prenet and frames per step). Layout of what widens, as `nn.LSTMCell` and NVIDIA's decoder hold it:
LSTM rows are 4 gate blocks of the hidden size; the decoder LSTM reads [attention hidden,
context]; the frame and gate projections read [decoder hidden, context]; postnet convolution k
reads the channels of convolution k - 1 (the first reads the mel, the last writes it).
"""

from __future__ import annotations

import torch
from torch import nn

from tts.errors import TrainingError

__all__ = ["grow_state_dict"]

Segments = list[tuple[int, int]]  # (narrow size, wide size) per concatenated block of one dimension


def grow_state_dict(model: nn.Module, narrow: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`narrow` (a Tacotron 2 / Mellotron state dict, possibly narrower) as a state dict for `model`;
    returned unchanged when every shape already matches. Raises TrainingError naming the first
    tensor whose shape differs in a way this cannot grow."""
    own = model.state_dict()
    if all(key not in own or own[key].shape == value.shape for key, value in narrow.items()):
        return narrow
    layout = _layout(model, narrow)
    grown = dict(narrow)
    for key, value in narrow.items():
        if key not in own or own[key].shape == value.shape:
            continue
        if key not in layout:
            raise TrainingError(f"cannot grow {key} from {tuple(value.shape)} to {tuple(own[key].shape)}: only the "
                                "attention/decoder LSTM sizes and the postnet channels may widen")
        rows, columns = layout[key]
        if value.size(0) != sum(narrow for narrow, _ in rows) or (
                columns is not None and value.size(1) != sum(narrow for narrow, _ in columns)):
            raise TrainingError(f"cannot grow {key} from {tuple(value.shape)} to {tuple(own[key].shape)}: its other "
                                "dimensions differ too (only the LSTM sizes and postnet channels may widen)")
        grown[key] = _embed(own[key], value, rows, columns)
    return grown


def _layout(model: nn.Module, narrow: dict[str, torch.Tensor]) -> dict[str, tuple[Segments, Segments | None]]:
    """Each widenable tensor's (row segments, column segments or None) from the narrow and wide sizes."""
    decoder = model.decoder
    wide_attention, wide_decoder = decoder.attention_rnn.hidden_size, decoder.decoder_rnn.hidden_size
    narrow_attention = narrow["decoder.attention_rnn.weight_hh"].size(1)
    narrow_decoder = narrow["decoder.decoder_rnn.weight_hh"].size(1)
    memory = decoder.attention_layer.memory_layer.linear_layer.in_features
    attention, decoder_units = [(narrow_attention, wide_attention)], [(narrow_decoder, wide_decoder)]
    fixed_inputs = [(decoder.attention_rnn.input_size,) * 2]
    layout: dict[str, tuple[Segments, Segments | None]] = {
        "decoder.attention_rnn.weight_ih": (attention * 4, fixed_inputs),
        "decoder.attention_rnn.weight_hh": (attention * 4, attention),
        "decoder.attention_rnn.bias_ih": (attention * 4, None),
        "decoder.attention_rnn.bias_hh": (attention * 4, None),
        "decoder.attention_layer.query_layer.linear_layer.weight": (_same(decoder.attention_layer.query_layer),
                                                                    attention),
        "decoder.decoder_rnn.weight_ih": (decoder_units * 4, attention + [(memory, memory)]),
        "decoder.decoder_rnn.weight_hh": (decoder_units * 4, decoder_units),
        "decoder.decoder_rnn.bias_ih": (decoder_units * 4, None),
        "decoder.decoder_rnn.bias_hh": (decoder_units * 4, None),
    }
    for projection in ("linear_projection", "gate_layer"):
        layer = getattr(decoder, projection)
        layout[f"decoder.{projection}.linear_layer.weight"] = (_same(layer), decoder_units + [(memory, memory)])
    convolutions = model.postnet.convolutions
    for index, block in enumerate(convolutions):
        conv = block[0].conv
        rows = [(narrow[f"postnet.convolutions.{index}.0.conv.weight"].size(0), conv.out_channels)]
        columns = [(narrow[f"postnet.convolutions.{index}.0.conv.weight"].size(1), conv.in_channels)]
        layout[f"postnet.convolutions.{index}.0.conv.weight"] = (rows, columns)
        for name in ("0.conv.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"):
            layout[f"postnet.convolutions.{index}.{name}"] = (rows, None)
    return layout


def _same(layer: nn.Module) -> Segments:
    size = layer.linear_layer.out_features
    return [(size, size)]


def _positions(segments: Segments) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the narrow entries sit in the wide dimension, and a mask of the wide entries that are new."""
    old, new, offset = [], [], 0
    for narrow, wide in segments:
        if narrow > wide:
            raise TrainingError(f"cannot shrink a layer from {narrow} to {wide} units")
        old.extend(range(offset, offset + narrow))
        new.extend(range(offset + narrow, offset + wide))
        offset += wide
    is_new = torch.zeros(offset, dtype=torch.bool)
    is_new[new] = True
    return torch.tensor(old, dtype=torch.long), is_new


def _embed(wide: torch.Tensor, narrow: torch.Tensor, rows: Segments, columns: Segments | None) -> torch.Tensor:
    """`wide`'s initialisation with `narrow` in the old rows/columns and zeros from new columns into
    old rows (a new unit feeds no old one yet); new rows keep their initial weights."""
    old_rows, _ = _positions(rows)
    result = wide.detach().clone()
    if columns is None:
        result[old_rows] = narrow.to(result.dtype)
        return result
    old_columns, new_columns = _positions(columns)
    old_part = result[old_rows]
    old_part[:, new_columns] = 0.0
    old_part[:, old_columns] = narrow.to(result.dtype)
    result[old_rows] = old_part
    return result
