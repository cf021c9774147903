"""voxflow studio: a Gradio page to speak, transfer a speaking style, sing a score and walk through
Flowtron's latent space, with any `tts.api.Synthesizer`.

    from demo.app import build_app, launch
    app = build_app({"my voice": Synthesizer.from_pretrained("voice.safetensors")})
    launch(app)                                # http://127.0.0.1:7860, or `voxflow demo --model ...`

Controls a voice does not take are hidden or disabled with a note. A `tts.errors.UserError`
(and a tripped guard) shows as an error message in the page, never a traceback. Guards (`Limits`):
text length, upload size, reference duration, song length and interpolation steps; every value a
request carries is checked as the API checks it (`tts.inputs`: control characters, audio that is
not audio, NaN and out-of-range numbers); a queue running one job at a time; the server binds
127.0.0.1 unless told otherwise. The page reads only uploads and
recordings (Gradio's own cache) and the bundled sample score, never a path a user types.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import gradio as gr

from demo.handlers import LIMITS, SAMPLE_TEXTS, Limits, Studio, VoiceSpec, voice_controls

__all__ = ["Limits", "LIMITS", "Studio", "build_app", "launch"]


def build_app(voices: Mapping[str, VoiceSpec], limits: Limits = LIMITS, title: str = "voxflow studio") -> gr.Blocks:
    """The demo page for `voices` (name → Synthesizer or checkpoint path); call `launch(app)` to serve it."""
    studio = Studio(voices, limits)
    names = list(studio.voices)
    first = voice_controls(names[0], studio.voices[names[0]])
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"# {title}\nSpeak text, copy the style, pitch or rhythm of a recording, sing a score, "
                    "and walk through a Flowtron voice's latent space.")
        with gr.Row():
            voice = gr.Dropdown(names, value=names[0], label="voice", scale=2)
            speaker = gr.Dropdown(label="speaker", scale=2, **first["speaker"])
            seed = gr.Number(1, precision=0, label="seed (empty = random)", scale=1)
        note = gr.Markdown(**first["note"])
        with gr.Tabs():
            with gr.Tab("Speak", id="speak"):
                with gr.Row():
                    with gr.Column():
                        text = gr.Textbox(SAMPLE_TEXTS[0], lines=3, label="text", elem_id="speak-text",
                                          info=f"up to {limits.max_text_chars} characters; long text is split "
                                               "into sentences")
                        gr.Examples([[sample] for sample in SAMPLE_TEXTS], inputs=[text])
                        sigma = gr.Slider(0.0, 1.0, step=0.05, label="sigma: sampling temperature of the flows",
                                          **first["sigma"])
                        denoise = gr.Slider(0.0, 0.1, value=0.0, step=0.005, label="denoise: WaveGlow bias removal",
                                            **first["denoise"])
                        speak_button = gr.Button("Speak", variant="primary", elem_id="speak-button")
                    with gr.Column():
                        speak_audio = gr.Audio(label="speech", elem_id="speak-audio", interactive=False)
                        speak_mel = gr.Plot(label="mel spectrogram", elem_id="speak-mel", show_label=False)
                        speak_alignment = gr.Plot(label="attention alignment", elem_id="speak-alignment",
                                                  show_label=False)
            with gr.Tab("Style transfer", id="transfer"):
                transfer_note = gr.Markdown(**first["transfer_note"])
                with gr.Row():
                    with gr.Column():
                        seconds = f"{limits.max_audio_seconds:.0f} s"
                        reference = gr.Audio(sources=["upload", "microphone"], type="filepath", elem_id="reference",
                                             label=f"reference: record or upload (≤ {seconds})")
                        transcript = gr.Textbox(label="the reference's transcript", elem_id="transcript",
                                                info="needed for rhythm and for Flowtron's posterior style")
                        what = gr.CheckboxGroup(label="transfer", elem_id="what", **first["what"])
                        pitch_shift = gr.Slider(-12, 12, value=0, step=1, label="pitch shift (semitones)",
                                                **first["pitch_shift"])
                        target = gr.Textbox(SAMPLE_TEXTS[1], label="target text", elem_id="target",
                                            info="with rhythm, the reference's own words are spoken instead")
                        transfer_button = gr.Button("Transfer", variant="primary", elem_id="transfer-button")
                    with gr.Column():
                        transfer_audio = gr.Audio(label="result", elem_id="transfer-audio", interactive=False)
                        transfer_f0 = gr.Plot(label="reference and result F0", elem_id="transfer-f0",
                                              show_label=False)
                        transfer_mel = gr.Plot(label="result mel spectrogram", elem_id="transfer-mel", show_label=False)
            with gr.Tab("Sing", id="sing"):
                sing_note = gr.Markdown(**first["sing_note"])
                with gr.Row():
                    with gr.Column():
                        score_source = gr.Radio(["sample duet", "my upload"], value="sample duet", label="score")
                        score = gr.File(label="MusicXML score", file_types=[".musicxml", ".xml", ".mxl"],
                                        type="filepath", height=140)
                        part = gr.Dropdown(["Soprano", "Alto", "0", "1"], value="Soprano", allow_custom_value=True,
                                           label="part (name or number)")
                        sing_shift = gr.Slider(-12, 12, value=0, step=1, label="pitch shift (semitones)")
                        bpm = gr.Slider(0, 240, value=0, step=5, label="tempo (beats per minute; 0 = the score's)")
                        sing_button = gr.Button("Sing", variant="primary", elem_id="sing-button", **first["sing"])
                    with gr.Column():
                        sing_audio = gr.Audio(label="singing", elem_id="sing-audio", interactive=False)
                        sing_mel = gr.Plot(label="mel spectrogram", elem_id="sing-mel", show_label=False)
            with gr.Tab("Interpolate", id="interpolate"):
                walk_note = gr.Markdown(**first["walk_note"])
                with gr.Row():
                    with gr.Column():
                        walk_text = gr.Textbox(SAMPLE_TEXTS[0], label="text")
                        mode = gr.Radio(label="path", **first["mode"],
                                        info="speakers: from one speaker to another; samples: between two random "
                                             "draws; style: towards the reference's style (Flowtron: prior → "
                                             "its posterior)")
                        with gr.Row():
                            start = gr.Dropdown(label="from speaker", **first["start"])
                            end = gr.Dropdown(label="to speaker", **first["end"])
                        steps = gr.Slider(2, limits.max_steps, value=5, step=1, label="steps")
                        walk_sigma = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="sigma", **first["walk_sigma"])
                        with gr.Accordion("reference for the style paths", open=False, visible=False) as style_box:
                            walk_reference = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                                      label="reference")
                            walk_transcript = gr.Textbox(label="the reference's transcript",
                                                         **first["walk_transcript"])
                        walk_button = gr.Button("Interpolate", variant="primary", elem_id="walk-button",
                                                **first["walk"])
                    with gr.Column():
                        walk_audio = gr.Audio(label="every step in turn", elem_id="walk-audio", interactive=False)
                        clips = gr.State([])
                        step = gr.Slider(1, 2, value=1, step=1, label="listen to one step", visible=False)
                        step_audio = gr.Audio(label="this step", elem_id="step-audio", interactive=False)
                        walk_plot = gr.Plot(label="mel at each step", elem_id="walk-plot", show_label=False)

        voice.change(studio.on_voice, [voice], [note, speaker, sigma, denoise, what, transfer_note, pitch_shift,
                                                sing_button, sing_note, walk_button, walk_note, mode, start, end,
                                                walk_sigma, walk_transcript],
                     api_name=False)
        speak_inputs = [text, voice, speaker, sigma, denoise, seed]
        speak_outputs = [speak_audio, speak_mel, speak_alignment]
        speak_button.click(studio.speak, speak_inputs, speak_outputs, api_name="speak")
        text.submit(studio.speak, speak_inputs, speak_outputs, api_name=False)
        transfer_button.click(studio.transfer, [reference, transcript, what, pitch_shift, target, voice, speaker, seed],
                              [transfer_audio, transfer_f0, transfer_mel], api_name="transfer")
        sing_button.click(studio.sing, [score_source, score, part, voice, speaker, sing_shift, bpm, seed],
                          [sing_audio, sing_mel], api_name="sing")
        walk_button.click(studio.interpolate, [walk_text, mode, start, end, steps, walk_sigma, seed, walk_reference,
                                               walk_transcript, voice],
                          [walk_audio, walk_plot, clips, step, step_audio], api_name="interpolate")
        step.change(studio.pick_step, [clips, step], [step_audio], api_name=False)
        score.upload(lambda: "my upload", None, [score_source], api_name=False)
        mode.change(lambda chosen: gr.update(open=True, visible=bool(chosen) and chosen.startswith("style")),
                    [mode], [style_box],
                    api_name=False)
    app.queue(default_concurrency_limit=1, max_size=limits.queue_size)
    app.studio = studio  # for tests and scripts: the handlers behind the page
    return app


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, **options: Any):
    """Serve the page (local only unless `host` says otherwise); `options` go to `gr.Blocks.launch`."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    studio: Studio = getattr(app, "studio")
    options.setdefault("max_file_size", studio.limits.max_upload_bytes)
    return app.launch(server_name=host, server_port=port, share=False, theme=gr.themes.Soft(primary_hue="indigo"),
                      **options)
