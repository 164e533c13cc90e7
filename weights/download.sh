#!/bin/sh
# Fetch the official weights and files the libmcnn apps use, verify their SHA-256 checksums,
# and say where each file went.  See weights/README.md for sources and licences.
#
#   weights/download.sh [--dir DIR] [--force] NAME...
#   weights/download.sh --list
#
# NAME: clip-vit-b32  OpenAI CLIP ViT-B/32 (OpenCLIP's safetensors) + the BPE vocabulary
#       movieclip     the MovieCLIP taxonomy (179 scene labels)
#       resnet50      torchvision's ResNet-50 IMAGENET1K_V1, as timm/resnet50.tv_in1k
#       vit-b16       timm/vit_base_patch16_224.augreg_in21k_ft_in1k
#       all           every one of the above
#
# Checksums: files whose published SHA-256 is written below are checked against it.  For the
# others this script cannot know the checksum (it was written on a machine that cannot reach
# those hosts), so it says so, records the SHA-256 of the first download in SHA256SUMS.local
# beside the files, and checks every later download against that record.
set -eu

usage() {
    cat <<'EOF'
usage: weights/download.sh [--dir DIR] [--force] NAME...
       weights/download.sh --list

NAME: clip-vit-b32  OpenAI CLIP ViT-B/32 weights (safetensors) + bpe_simple_vocab_16e6.txt.gz
      movieclip     MovieCLIP_taxonomy_split.txt (179 scene labels)
      resnet50      torchvision ResNet-50 IMAGENET1K_V1 (timm/resnet50.tv_in1k safetensors)
      vit-b16       ViT-B/16 ImageNet-1k (timm/vit_base_patch16_224.augreg_in21k_ft_in1k)
      all           all of the above

--dir DIR   where to put the files (default: the folder of this script)
--force     download again even when a verified copy is present
--list      print what each NAME fetches (file, URL, SHA-256) and exit
Needs curl, and sha256sum or shasum.
EOF
}

# The files: NAME|FILE|URL|SHA256 ("-" when no published checksum is pinned here).
# The two pinned checksums were taken from copies known to match the official files (the
# project's reference data, checked by its tokenizer and label tests).
CATALOGUE='clip-vit-b32|clip-vit-b32.safetensors|https://huggingface.co/timm/vit_base_patch32_clip_224.openai/resolve/main/open_clip_model.safetensors|-
clip-vit-b32|bpe_simple_vocab_16e6.txt.gz|https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz|924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a
movieclip|MovieCLIP_taxonomy_split.txt|https://raw.githubusercontent.com/usc-sail/mica-MovieCLIP/main/split_files/MovieCLIP_taxonomy_split.txt|0ac3d5bcfebed9e713f9b59124ca81a995cbe801eedd8e313763d08850e70d7c
resnet50|resnet50.safetensors|https://huggingface.co/timm/resnet50.tv_in1k/resolve/main/model.safetensors|-
vit-b16|vit-b16.safetensors|https://huggingface.co/timm/vit_base_patch16_224.augreg_in21k_ft_in1k/resolve/main/model.safetensors|-'
catalogue() { printf '%s\n' "$CATALOGUE"; }

NAMES="clip-vit-b32 movieclip resnet50 vit-b16"

die() {
    echo "download.sh: $*" >&2
    exit 1
}

case "$0" in
*/*) dir=${0%/*} ;;
*) dir=. ;;
esac
force=0
list=0
wanted=""
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --list) list=1 ;;
    --force) force=1 ;;
    --dir)
        [ $# -ge 2 ] || { echo "download.sh: --dir needs a folder" >&2; exit 2; }
        dir=$2
        shift ;;
    --dir=*) dir=${1#--dir=} ;;
    -*) echo "download.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    all) wanted="$wanted $NAMES" ;;
    *)
        ok=0
        for n in $NAMES; do [ "$1" = "$n" ] && ok=1; done
        if [ $ok = 0 ]; then
            echo "download.sh: unknown name '$1'; known: $NAMES all" >&2
            exit 2
        fi
        wanted="$wanted $1" ;;
    esac
    shift
done

if [ $list = 1 ]; then
    catalogue | while IFS='|' read -r name file url sum; do
        [ "$sum" = "-" ] && sum="(not pinned: recorded in SHA256SUMS.local on first download)"
        printf '%-13s %s\n              %s\n              sha256 %s\n' "$name" "$file" "$url" "$sum"
    done
    exit 0
fi
if [ -z "$wanted" ]; then
    usage >&2
    exit 2
fi

command -v curl >/dev/null 2>&1 ||
    die "curl is not installed (Debian: apt-get install curl); it is needed to download"
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
    die "neither sha256sum nor shasum is installed: checksums cannot be verified"
fi
mkdir -p "$dir" || die "cannot create $dir"
local_sums="$dir/SHA256SUMS.local"

# The checksum a file must have: the pinned one, else the one recorded locally, else empty.
expected() { # FILE SUM
    if [ "$2" != "-" ]; then
        echo "$2"
    elif [ -f "$local_sums" ]; then
        awk -v f="$1" '$2 == f { print $1; exit }' "$local_sums"
    fi
}

fetch() { # FILE URL SUM
    file=$1 url=$2 pinned=$3
    dest="$dir/$file"
    want=$(expected "$file" "$pinned")
    if [ $force = 0 ] && [ -f "$dest" ] && [ -n "$want" ] && [ "$(sha256 "$dest")" = "$want" ]; then
        echo "already present: $dest (sha256 verified)"
        return 0
    fi
    echo "downloading $url"
    rm -f "$dest.part"
    if ! curl -fL --proto '=https' --retry 3 --connect-timeout 30 -o "$dest.part" "$url"; then
        rm -f "$dest.part"
        die "download failed: $url"
    fi
    got=$(sha256 "$dest.part")
    if [ -n "$want" ] && [ "$got" != "$want" ]; then
        rm -f "$dest.part"
        die "checksum mismatch for $file: got $got, expected $want (the download was discarded)"
    fi
    mv -f "$dest.part" "$dest"
    if [ -z "$want" ]; then
        echo "$got  $file" >>"$local_sums"
        echo "NOTE: no published checksum is pinned for $file in this script; its sha256 $got"
        echo "      was recorded in $local_sums (trust on first use): later downloads are"
        echo "      checked against it.  Compare it with the one the source publishes."
    fi
    size=$(wc -c <"$dest" | tr -d ' ')
    echo "saved: $dest ($size bytes, sha256 $got)"
}

# Each name once, in the catalogue's order.
status=0
for name in $NAMES; do
    case " $wanted " in *" $name "*) ;; *) continue ;; esac
    catalogue | while IFS='|' read -r n file url sum; do
        [ "$n" = "$name" ] || continue
        fetch "$file" "$url" "$sum" </dev/null
    done || status=1
done
exit $status
