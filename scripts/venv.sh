# Shared by run-app.sh and test.sh (sourced, not run): find Python >= 3.11, create .venv, install a
# requirements file only when it changed since the last successful install.

VENV=.venv

find_python() {
    local candidate
    for candidate in python3.11 python3.12 python3.13 python3; do
        # pyenv shims exist for versions that are not installed; running the candidate is the real test
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: MNIST Lab needs Python 3.11 or newer (tried python3.11, python3.12, python3.13, python3)." >&2
    return 1
}

ensure_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        local python
        python=$(find_python)
        echo "Creating $VENV with $python ($("$python" --version 2>&1))"
        "$python" -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "error: $VENV does not run Python >= 3.11; remove it (rm -rf $VENV) and try again." >&2
        return 1
    fi
}

# install_requirements FILE STAMP [EXTRA_FILE...]: the stamp holds the sha256 of FILE plus the extra files it
# includes with -r, so a change in any of them triggers one reinstall.
install_requirements() {
    local requirements=$1 stamp=$2
    shift 2
    local digest
    digest=$("$VENV/bin/python" - "$requirements" "$@" <<'PY'
import hashlib, sys
digest = hashlib.sha256()
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        digest.update(f.read())
print(digest.hexdigest())
PY
)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
        return 0
    fi
    echo "Installing $requirements into $VENV (new or changed since the last install)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -r "$requirements"
    echo "$digest" > "$stamp"
}
