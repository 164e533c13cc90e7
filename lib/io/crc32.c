/* CRC-32 (ISO 3309 / ITU-T V.42), the checksum of gzip members and PNG chunks.
 *
 * The CRC is the remainder of the message, read as a polynomial over GF(2), divided by
 * x^32 + x^26 + ... + 1; with bits taken least-significant first that polynomial is the
 * constant 0xEDB88320.  Table t[0] holds the remainder of each byte value, so one byte is
 * folded in with one lookup.  "Slicing by 8" goes further: t[k][b] is the effect of byte b
 * followed by k zero bytes, so eight input bytes are folded in with eight independent
 * lookups XOR-ed together - about five times faster than byte at a time. */
#include "io/inflate.h"

void mcnn_crc32_init(mcnn_crc32_table *tab)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        tab->t[0][n] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int n = 0; n < 256; n++) {
            uint32_t c = tab->t[k - 1][n];
            tab->t[k][n] = (c >> 8) ^ tab->t[0][c & 0xff]; /* one more zero byte */
        }
}

uint32_t mcnn_crc32(const mcnn_crc32_table *tab, uint32_t crc, const unsigned char *p, size_t n)
{
    const uint32_t(*t)[256] = tab->t;
    uint32_t c = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
            t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    }
    while (n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
    return ~c;
}
