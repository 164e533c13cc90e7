"""The demo's sample images: the first Fashion-MNIST test image of each class, as 8-bit gray PNG
files named <test index>-<true class>.png in weights/samples/, for README's classify command.

The PNG encoder is the specification's minimum: signature, IHDR (8-bit gray), one IDAT of
zlib-compressed rows each with filter type 0, IEND; every chunk with its CRC-32.
Run: python3 tests/ref/gen_demo_samples.py [IDX_DIR]   (default /usr/share/datasets/fashion-mnist)"""
import gzip
import os
import struct
import sys
import zlib

CLASSES = ['t-shirt-top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker',
           'bag', 'ankle-boot']
OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'weights', 'samples')


def read_idx(path):
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def png(width, height, pixels):
    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + \
            struct.pack('>I', zlib.crc32(kind + body) & 0xffffffff)
    rows = b''.join(b'\0' + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b'\x89PNG\r\n\x1a\n' +
            chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(rows, 9)) + chunk(b'IEND', b''))


def find(d, name):
    for n in (name, name + '.gz'):
        if os.path.exists(os.path.join(d, n)):
            return os.path.join(d, n)
    sys.exit('%s not found in %s' % (name, d))


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else '/usr/share/datasets/fashion-mnist'
    (n, h, w), images = read_idx(find(d, 't10k-images-idx3-ubyte'))
    _, labels = read_idx(find(d, 't10k-labels-idx1-ubyte'))
    os.makedirs(OUT, exist_ok=True)
    done = set()
    for i in range(n):
        if labels[i] in done:
            continue
        done.add(labels[i])
        name = '%04d-%s.png' % (i, CLASSES[labels[i]])
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(png(w, h, images[i * h * w:(i + 1) * h * w]))
        print(name)
        if len(done) == len(CLASSES):
            break


if __name__ == '__main__':
    main()
