"""Notebook 04 solved the way a student might: other names, other valid calls (see README.md)."""

ANSWERS = {
    "04.2": '''
from time import perf_counter


def time_fairly(work, n_warm, n_timed, clock=perf_counter):
    [work() for _ in range(n_warm)]
    durations = []
    for _ in range(n_timed):
        t0 = clock()
        work()
        t1 = clock()
        durations.append(1000.0 * (t1 - t0))
    quartiles = statistics.quantiles(durations, n=4)
    return dict(samples_ms=durations, median_ms=float(np.median(durations)),
                iqr_ms=quartiles[2] - quartiles[0])
''',
    "04.3": '''
typical_torch, typical_ort = np.median(torch_ms), np.median(ort_ms)
speedup_answer = dict(torch_ms=list(torch_ms), ort_ms=list(ort_ms),
                      speedup=float(typical_torch / typical_ort))
''',
    "04.4": '''
seconds = float(np.median(ort_ms)) / 1000
achieved = flops / seconds / 1e9
work_answer = dict(flops=flops, median_ms=seconds * 1000, peak_gflops=peak, gflops=achieved,
                   peak_share=achieved / peak)
''',
    "04.5": '''
from pathlib import Path


class DigitsReader(CalibrationDataReader):
    def __init__(self, images, per_batch=64):
        self.batches = iter(np.array_split(images, max(1, len(images) // per_batch)))

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {"x": batch}


int8_path = Path("artifacts") / "digits-int8.onnx"
quantize_static(model_input="artifacts/digits-prep.onnx", model_output=int8_path,
                calibration_data_reader=DigitsReader(x_train[:512].numpy()),
                per_channel=True, weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8, quant_format=QuantFormat.QDQ)
''',
    "04.6": '''
fp32_ms = quant_rows[0]["median_ms"]
int8_answer = {"rows": quant_rows,
               "slower": [r["variant"] for r in quant_rows if r["median_ms"] > fp32_ms]}
''',
}
