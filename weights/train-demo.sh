#!/bin/sh
# make demo: train a small ResNet and a small ViT from scratch on Fashion-MNIST and report their
# test accuracy and the time each took (docs/demo.md has the recipes and the measured results).
#   sh weights/train-demo.sh [BUILD] [resnet|vit|both]
# Runs go to BUILD/demo/<model>/ (checkpoint, model, log.csv).  Ctrl-C stops a run with a
# checkpoint; run the same command again to continue it.
set -e
build=${1:-build}
which=${2:-both}
train="$build/mcnn-train"
data=${MCNN_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
if [ ! -e "$data/train-images-idx3-ubyte.gz" ] && [ ! -e "$data/train-images-idx3-ubyte" ]; then
    echo "Fashion-MNIST is not in $data: install Debian's dataset-fashion-mnist package" \
         "(or set MCNN_FASHION_MNIST to a folder with the four IDX files)" >&2
    exit 1
fi

# The recipes (docs/demo.md): AdamW, warm-up then cosine, label smoothing 0.1, horizontal flips;
# the ResNet also random crops after 2-pixel padding.
RESNET="--arch resnet-small --width 24 --depth 1 --epochs 10 --batch 128 --lr 2e-3 --wd 0.05 --warmup 0.5 --pad 2"
VIT="--arch vit-small --patch 7 --width 96 --depth 4 --epochs 30 --batch 128 --lr 2e-3 --wd 0.05 --warmup 1 --pad 0"

run() { # name, recipe
    out="$build/demo/$1"
    mkdir -p "$build/demo"
    start=$(date +%s)
    if [ -f "$out/checkpoint.safetensors" ] && [ ! -f "$out/model.safetensors" ]; then
        echo "== $1: continuing the interrupted run in $out"
        "$train" --resume --out "$out" --progress || return $?
    else
        echo "== $1: $train --data fashion-mnist:train --test fashion-mnist:test $2 --out $out"
        # shellcheck disable=SC2086
        "$train" --data fashion-mnist:train --test fashion-mnist:test --idx-dir "$data" $2 \
                 --out "$out" --progress || return $?
    fi
    echo "== $1: $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s" \
         "wall clock on $(nproc) cores"
}

case $which in
    resnet) run resnet "$RESNET" ;;
    vit) run vit "$VIT" ;;
    *) run resnet "$RESNET" && run vit "$VIT" ;;
esac
