#!/bin/sh
# Seed corpora for the fuzz drivers, from files already in the repository (tests/data, weights/)
# and, when present, the shared CLIP reference ($MCNN_SHARED/ref, $MCNN_SHARED/data), plus the
# tiny models and deflate streams the make_seeds program writes.  Nothing is downloaded.
#   tests/fuzz/make_seeds.sh OUT MAKE_SEEDS_BINARY       (run from the repository's top)
# OUT/<driver>/ is emptied and refilled; make fuzz-seeds runs this.
set -eu
out=$1
gen=$2
shared=${MCNN_SHARED:-../shared}
sep='
--8<--
'
drivers="png jpeg ppm ppm_stream inflate json safetensors idx bpe_vocab tokenizer split
         classifier vit resnet clip torch"
for d in $drivers; do rm -rf "${out:?}/$d"; mkdir -p "$out/$d"; done

img=tests/data/images
cp $img/*.png $img/bad_png.bin weights/samples/*.png "$out/png/"
cp tests/data/jpeg/*.jpg "$out/jpeg/"
cp tests/data/torch/* "$out/torch/"
cp $img/*.ppm $img/*.pgm $img/bad_ppm.bin "$out/ppm/"

# streams: single binary frames, and runs of frames back to back (ffmpeg's image2pipe)
cp $img/p5_*.pgm $img/p6_*.ppm "$out/ppm_stream/"
cat $img/p6_255_17x13.ppm $img/p6_255_1x1.ppm $img/p6_255_17x13.ppm > "$out/ppm_stream/three.ppm"
cat $img/p5_255_17x13.pgm $img/p6_65535_3x5.ppm $img/p5_1_4x4.pgm > "$out/ppm_stream/mixed.ppm"
{ cat $img/p6_2_3x3.ppm; printf '\n\n'; cat $img/p6_2_3x3.ppm; } > "$out/ppm_stream/spaced.ppm"

cp $img/*.gz $img/bad_deflate.bin tests/data/train_idx/*.gz tests/data/tokenizer_hf/*.gz \
   "$out/inflate/"

# JSON: safetensors headers (bytes 8 .. 8 + the little-endian length), vocab.json, and a few
# texts for the corners of the grammar
for f in tests/data/*.safetensors weights/*.safetensors; do
    n=$(od -An -tu8 -N8 "$f" | tr -d ' ')
    tail -c +9 "$f" | head -c "$n" > "$out/json/header-$(basename "$f" .safetensors).json"
done
cp tests/data/tokenizer_hf/vocab.json "$out/json/vocab.json"
printf '%s' '{"a":[1,-2.5e-3,true,false,null],"b":{"c":"\u00e9\ud83d\ude00\n\"\\/"}}' \
    > "$out/json/escapes.json"
printf '%s' '[9007199254740993,-9223372036854775808,1e308,0.0,-0,[[[]]],{}]' > "$out/json/numbers.json"
printf '%s' '{"k":1,"k":2}' > "$out/json/duplicate.json"

cp tests/data/safetensors_dtypes.safetensors tests/data/losses.safetensors \
   tests/data/optim.safetensors "$out/safetensors/"

cat tests/data/train_idx/images.idx > "$out/idx/plain"
printf '%s' "$sep" >> "$out/idx/plain"
cat tests/data/train_idx/labels.idx >> "$out/idx/plain"
cat tests/data/train_idx/images.idx.gz > "$out/idx/gzipped"
printf '%s' "$sep" >> "$out/idx/gzipped"
cat tests/data/train_idx/labels.idx.gz >> "$out/idx/gzipped"

cp tests/data/tokenizer_hf/bpe_small.txt.gz tests/data/tokenizer_hf/bpe_small_nl.txt.gz \
   tests/data/tokenizer_hf/merges.txt "$out/bpe_vocab/"
for d in tokenizer_hf tokenizer_hf_shuffled; do
    { cat tests/data/$d/vocab.json; printf '%s' "$sep"; cat tests/data/$d/merges.txt; } \
        > "$out/bpe_vocab/hf-$d"
done
if [ -f "$shared/data/clip/bpe_simple_vocab_16e6.txt.gz" ]; then
    cp "$shared/data/clip/bpe_simple_vocab_16e6.txt.gz" "$out/bpe_vocab/"
fi

t=$out/tokenizer
printf 'a photo of a cat' > "$t/plain"
printf "  Don't   STOP &amp;amp; go&lt;3 it's 12,345.6 mph!!  " > "$t/clean"
printf '東京の夜景 — café naïve 😀👍🏽 Ωmega' > "$t/unicode"
printf '<|startoftext|>x<|endoftext|> &#x1F600; &nbsp;&NotARealEntity; &#0;' > "$t/special"
head -c 2000 /dev/zero | tr '\0' 'a' > "$t/long-word"
if [ -f "$shared/data/movieclip/taxonomy-179.txt" ]; then
    cp "$shared/data/movieclip/taxonomy-179.txt" "$t/taxonomy"
fi

s=$out/split
printf 'cat\ndog\nship\n' > "$s/labels-only"
printf 'cat\ndog\nship\n%sa.png 0\nb.jpg 1 2\n# comment\n\nsub/c.ppm 2\n' "$sep" > "$s/multi"
printf 'street\r\nbeach\r\n%sa.png\t1\r\n' "$sep" > "$s/crlf"
if [ -f "$shared/data/movieclip/labels-150.txt" ]; then
    { cat "$shared/data/movieclip/labels-150.txt"; printf '%sa.png 149 0\n' "$sep"; } \
        > "$s/movieclip"
fi

cp weights/demo-fashion-resnet.safetensors weights/demo-fashion-vit.safetensors "$out/classifier/"
# (tests/data's vit_tiny and resnet_tiny are goldens with prefixed names, not checkpoints)
cp weights/demo-fashion-vit.safetensors "$out/vit/"
cp weights/demo-fashion-resnet.safetensors "$out/resnet/"
if [ -f "$shared/ref/clip_tiny.safetensors" ]; then cp "$shared/ref/clip_tiny.safetensors" "$out/clip/"; fi

"$gen" "$out"
