#!/usr/bin/env bash
# Installs the Qualcomm QNN runtime libraries (x86_64 Linux: HTP backend with its
# built-in emulator, and the system API) into the project-local `.qnn/lib`.
#
# The libraries come from the PyPI wheel `onnxruntime-qnn` (no Qualcomm account
# needed). Only the files our flow loads are kept: libQnnHtp.so, libQnnSystem.so
# and the bundled libc++ / libc++abi / libunwind they find through their
# `$ORIGIN` RPATH, so everything lives flat in one directory.
#
# Idempotent: a version stamp in `.qnn/lib/.installed` skips the work when the
# same version is already installed. Usage:
#   scripts/setup-qnn.sh            # install into <repo>/.qnn/lib
#   QNN_INSTALL_DIR=/opt/qnn scripts/setup-qnn.sh   # install into /opt/qnn/lib
#   scripts/setup-qnn.sh --force    # reinstall even if the stamp matches
set -euo pipefail

PKG="onnxruntime-qnn"
PKG_VERSION="2.7.0"
STAMP_TEXT="${PKG}==${PKG_VERSION}"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
install_root="${QNN_INSTALL_DIR:-${repo_root}/.qnn}"
lib_dir="${install_root}/lib"
stamp="${lib_dir}/.installed"

force=0
for arg in "$@"; do
    case "${arg}" in
        --force) force=1 ;;
        -h|--help)
            sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) echo "setup-qnn.sh: unknown argument '${arg}' (try --help)" >&2; exit 2 ;;
    esac
done

arch="$(uname -m)"
if [[ "${arch}" != "x86_64" ]]; then
    echo "setup-qnn.sh: the ${PKG} wheel only ships x86_64 Linux libraries; this machine is ${arch}." >&2
    echo "On a device, point MLLM_QNN_LIB_DIR (or --qnn-lib-dir) at the QNN SDK's libraries instead." >&2
    exit 1
fi

# libQnnSystem.so needs the system libatomic.so.1 (Debian package libatomic1).
ensure_libatomic() {
    if ldconfig -p 2>/dev/null | grep -q 'libatomic\.so\.1 '; then
        return 0
    fi
    for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /usr/lib64 /lib64 /usr/lib /lib; do
        if [[ -e "${d}/libatomic.so.1" ]]; then
            return 0
        fi
    done
    if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
        echo "setup-qnn.sh: libatomic.so.1 missing; installing Debian package libatomic1"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libatomic1
    else
        echo "setup-qnn.sh: libatomic.so.1 is missing (libQnnSystem.so needs it)." >&2
        echo "  install it with: sudo apt-get install libatomic1   (Debian/Ubuntu)" >&2
        echo "  or your distribution's libatomic package, then re-run this script." >&2
        return 1
    fi
}

print_location() {
    echo "QNN libraries ($(cat "${stamp}")) are in: ${lib_dir}"
    for f in libQnnHtp.so libQnnSystem.so; do
        echo "  ${lib_dir}/${f}"
    done
    if [[ -z "${QNN_INSTALL_DIR:-}" ]]; then
        echo "The project finds them there automatically (or set MLLM_QNN_LIB_DIR=${lib_dir})."
    else
        echo "Point the project at them with MLLM_QNN_LIB_DIR=${lib_dir} (or --qnn-lib-dir)."
    fi
}

ensure_libatomic

if [[ "${force}" == "0" && -f "${stamp}" && "$(cat "${stamp}")" == "${STAMP_TEXT}" \
      && -f "${lib_dir}/libQnnHtp.so" && -f "${lib_dir}/libQnnSystem.so" ]]; then
    echo "setup-qnn.sh: ${STAMP_TEXT} already installed (stamp ${stamp}); nothing to do."
    print_location
    exit 0
fi

python="${PYTHON:-}"
if [[ -z "${python}" ]]; then
    for candidate in python3 python; do
        if command -v "${candidate}" >/dev/null 2>&1; then
            python="${candidate}"
            break
        fi
    done
fi
if [[ -z "${python}" ]] || ! "${python}" -m pip --version >/dev/null 2>&1; then
    echo "setup-qnn.sh: need python3 with pip to download ${STAMP_TEXT} from PyPI." >&2
    exit 1
fi

mkdir -p "${install_root}"
tmp="$(mktemp -d "${install_root}/.download.XXXXXX")"
cleanup() { rm -rf "${tmp}"; }
trap cleanup EXIT

echo "setup-qnn.sh: downloading ${STAMP_TEXT} (about 100 MB) ..."
PIP_ROOT_USER_ACTION=ignore "${python}" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "${tmp}/wheel" "${STAMP_TEXT}"

pkg_dir="${tmp}/wheel/onnxruntime_qnn"
libs_dir="${tmp}/wheel/onnxruntime_qnn.libs"
for f in libQnnHtp.so libQnnSystem.so; do
    if [[ ! -f "${pkg_dir}/${f}" ]]; then
        echo "setup-qnn.sh: ${f} not found in the ${STAMP_TEXT} wheel" >&2
        exit 1
    fi
done

# Stage everything in a sibling directory, then swap it in, so an interrupted
# run never leaves a half-populated lib dir behind a valid stamp.
stage="${tmp}/lib"
mkdir -p "${stage}"
cp "${pkg_dir}/libQnnHtp.so" "${pkg_dir}/libQnnSystem.so" "${stage}/"
# Licence texts travel with the binaries.
for f in LICENSE Qualcomm_LICENSE.pdf ThirdPartyNotices.txt; do
    if [[ -f "${pkg_dir}/${f}" ]]; then cp "${pkg_dir}/${f}" "${stage}/"; fi
done

# Copy every non-system library the two need (transitively), resolved through
# their RPATH ($ORIGIN and $ORIGIN/../onnxruntime_qnn.libs). In the flat
# install dir, $ORIGIN finds them.
copy_needed() {
    local lib="$1" dep
    while read -r dep; do
        [[ -z "${dep}" ]] && continue
        [[ -e "${stage}/${dep}" ]] && continue
        if [[ -f "${pkg_dir}/${dep}" ]]; then
            cp "${pkg_dir}/${dep}" "${stage}/"
        elif [[ -f "${libs_dir}/${dep}" ]]; then
            cp "${libs_dir}/${dep}" "${stage}/"
        else
            continue # a system library (libc, libm, libatomic, ...)
        fi
        copy_needed "${stage}/${dep}"
    done < <(readelf -d "${lib}" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
}
if ! command -v readelf >/dev/null 2>&1; then
    # Without readelf, copy the whole bundled-runtime directory.
    cp "${libs_dir}"/*.so* "${stage}/"
else
    copy_needed "${stage}/libQnnHtp.so"
    copy_needed "${stage}/libQnnSystem.so"
fi

# Check that every dependency resolves from the staged layout.
if command -v ldd >/dev/null 2>&1; then
    for f in libQnnHtp.so libQnnSystem.so; do
        if ldd "${stage}/${f}" | grep -q 'not found'; then
            echo "setup-qnn.sh: unresolved dependencies of ${f}:" >&2
            ldd "${stage}/${f}" | grep 'not found' >&2
            exit 1
        fi
    done
fi

echo "${STAMP_TEXT}" > "${stage}/.installed"
rm -rf "${lib_dir}.old"
if [[ -d "${lib_dir}" ]]; then mv "${lib_dir}" "${lib_dir}.old"; fi
mv "${stage}" "${lib_dir}"
rm -rf "${lib_dir}.old"

echo "setup-qnn.sh: installed ${STAMP_TEXT} (QNN $(sed -n "s/^qnn_version = '\(.*\)'/\1/p" "${pkg_dir}/build_and_package_info.py" 2>/dev/null || echo unknown))"
print_location
