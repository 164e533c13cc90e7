#!/bin/sh
# Fetch the official weights and files the libmcnn apps use, as their publishers publish them,
# verify their SHA-256 checksums, and say where each file went.  See weights/README.md.
#
#   weights/download.sh [--dir DIR] [--force] NAME...
#   weights/download.sh --list
#
# NAME: clip-vit-b32      OpenAI CLIP ViT-B/32 (OpenAI's ViT-B-32.pt) + the BPE vocabulary
#       clip-vit-b16      OpenAI CLIP ViT-B/16
#       clip-vit-l14      OpenAI CLIP ViT-L/14
#       clip-vit-l14-336  OpenAI CLIP ViT-L/14 at 336 px
#       clip-rn50         OpenAI CLIP RN50 (downloads, but libmcnn refuses CLIP ResNet towers)
#       movieclip         the MovieCLIP taxonomy (179 scene labels)
#       resnet50          torchvision's ResNet-50 IMAGENET1K_V1 (resnet50-0676ba61.pth)
#       resnet50-v2       torchvision's ResNet-50 IMAGENET1K_V2 (resnet50-11ad3fa6.pth)
#       vit-b16           torchvision's ViT-B/16 IMAGENET1K_V1 (vit_b_16-c867db91.pth)
#       all               every one of the above
#
# Checksums.  OpenAI's URLs carry each file's SHA-256 (.../clip/models/<sha256>/ViT-B-32.pt):
# pinned here and checked.  torchvision's file names carry the first 8 hex digits of theirs
# (resnet50-0676ba61.pth): checked; the full SHA-256, which torchvision does not publish, is
# recorded in SHA256SUMS.local beside the files on the first download (the script says so) and
# every later download is checked against it.  The two small files are pinned from copies of
# the official files.
#
# mcnn-classify's default model is clip-vit-b32.safetensors: clip-vit-b32 links that name to
# ViT-B-32.pt (libmcnn recognises formats by content, not by name).
set -eu

usage() {
    cat <<'EOF'
usage: weights/download.sh [--dir DIR] [--force] NAME...
       weights/download.sh --list

NAME: clip-vit-b32      OpenAI CLIP ViT-B/32 (ViT-B-32.pt) + bpe_simple_vocab_16e6.txt.gz
      clip-vit-b16      OpenAI CLIP ViT-B/16 (ViT-B-16.pt) + the vocabulary
      clip-vit-l14      OpenAI CLIP ViT-L/14 (ViT-L-14.pt) + the vocabulary
      clip-vit-l14-336  OpenAI CLIP ViT-L/14@336px (ViT-L-14-336px.pt) + the vocabulary
      clip-rn50         OpenAI CLIP RN50 (RN50.pt): not loadable by libmcnn (ResNet tower)
      movieclip         MovieCLIP_taxonomy_split.txt (179 scene labels)
      resnet50          torchvision ResNet-50 IMAGENET1K_V1 (resnet50-0676ba61.pth)
      resnet50-v2       torchvision ResNet-50 IMAGENET1K_V2 (resnet50-11ad3fa6.pth)
      vit-b16           torchvision ViT-B/16 IMAGENET1K_V1 (vit_b_16-c867db91.pth)
      all               all of the above

--dir DIR   where to put the files (default: the folder of this script)
--force     download again even when a verified copy is present
--list      print what each NAME fetches (file, URL, SHA-256) and exit
Needs curl, and sha256sum or shasum.
EOF
}

# The files: NAME|FILE|URL|CHECK, CHECK being the full SHA-256 (pinned) or prefix:HEX (the
# hash prefix in the published name; the rest recorded on first download).
OPENAI=https://openaipublic.azureedge.net/clip/models
VOCAB='bpe_simple_vocab_16e6.txt.gz|https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz|924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a'
CATALOGUE="clip-vit-b32|ViT-B-32.pt|$OPENAI/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt|40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af
clip-vit-b32|$VOCAB
clip-vit-b16|ViT-B-16.pt|$OPENAI/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt|5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f
clip-vit-b16|$VOCAB
clip-vit-l14|ViT-L-14.pt|$OPENAI/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt|b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836
clip-vit-l14|$VOCAB
clip-vit-l14-336|ViT-L-14-336px.pt|$OPENAI/3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt|3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02
clip-vit-l14-336|$VOCAB
clip-rn50|RN50.pt|$OPENAI/afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt|afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762
movieclip|MovieCLIP_taxonomy_split.txt|https://raw.githubusercontent.com/usc-sail/mica-MovieCLIP/main/split_files/MovieCLIP_taxonomy_split.txt|0ac3d5bcfebed9e713f9b59124ca81a995cbe801eedd8e313763d08850e70d7c
resnet50|resnet50-0676ba61.pth|https://download.pytorch.org/models/resnet50-0676ba61.pth|prefix:0676ba61
resnet50-v2|resnet50-11ad3fa6.pth|https://download.pytorch.org/models/resnet50-11ad3fa6.pth|prefix:11ad3fa6
vit-b16|vit_b_16-c867db91.pth|https://download.pytorch.org/models/vit_b_16-c867db91.pth|prefix:c867db91"
catalogue() { printf '%s\n' "$CATALOGUE"; }

NAMES="clip-vit-b32 clip-vit-b16 clip-vit-l14 clip-vit-l14-336 clip-rn50 movieclip resnet50 resnet50-v2 vit-b16"

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
        case "$sum" in
        prefix:*) sum="${sum#prefix:}... (the prefix in the name is checked; the full checksum is not published: recorded in SHA256SUMS.local on first download)" ;;
        esac
        printf '%-17s %s\n                  %s\n                  sha256 %s\n' "$name" "$file" "$url" "$sum"
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

# The checksum recorded for FILE on its first download, or empty.
recorded() {
    [ -f "$local_sums" ] && awk -v f="$1" '$2 == f { print $1; exit }' "$local_sums"
    return 0
}

# Whether SUM passes CHECK (a full SHA-256, or prefix:HEX) and any recorded checksum of FILE.
verified() { # FILE SUM CHECK
    case "$3" in
    prefix:*)
        case "$2" in "${3#prefix:}"*) ;; *) return 1 ;; esac
        rec=$(recorded "$1")
        [ -z "$rec" ] || [ "$2" = "$rec" ] ;;
    *) [ "$2" = "$3" ] ;;
    esac
}

fetch() { # FILE URL CHECK
    file=$1 url=$2 check=$3
    dest="$dir/$file"
    if [ $force = 0 ] && [ -f "$dest" ] && verified "$file" "$(sha256 "$dest")" "$check"; then
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
    if ! verified "$file" "$got" "$check"; then
        rm -f "$dest.part"
        want=$check
        case "$check" in
        prefix:*)
            want="${check#prefix:}... (the hash prefix in its published name)"
            case "$got" in "${check#prefix:}"*) want="$(recorded "$file") (recorded in $local_sums)" ;; esac ;;
        esac
        die "checksum mismatch for $file: got $got, expected $want (the download was discarded)"
    fi
    mv -f "$dest.part" "$dest"
    case "$check" in
    prefix:*)
        if [ -z "$(recorded "$file")" ]; then
            echo "$got  $file" >>"$local_sums"
            echo "NOTE: $file matches the hash prefix in its published name (${check#prefix:}); its full"
            echo "      sha256 $got, which the publisher does not list, was recorded in"
            echo "      $local_sums (trust on first use): later downloads are checked against it."
        fi ;;
    esac
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
    # mcnn-classify's default name for the CLIP model (formats are recognised by content)
    if [ "$name" = clip-vit-b32 ] && [ -f "$dir/ViT-B-32.pt" ] && [ ! -e "$dir/clip-vit-b32.safetensors" ]; then
        ln -s ViT-B-32.pt "$dir/clip-vit-b32.safetensors" && echo "linked: $dir/clip-vit-b32.safetensors -> ViT-B-32.pt"
    fi
done
exit $status
