#include "shots.h"
int shots_train_main(int argc, char **argv) { (void)argc, (void)argv; return 1; }
int shots_probe_main(int argc, char **argv) { (void)argc, (void)argv; return 1; }
int shots_eval_main(int argc, char **argv) { (void)argc, (void)argv; return 1; }
