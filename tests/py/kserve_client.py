"""Talks to pagan-serve's KServe V2 API with tritonclient[http] (a client nobody here
wrote): health, metadata, readiness, and inference on given latents in JSON and with
the binary tensor extension. Writes the two outputs as .npy for the Rust test to compare.

usage: kserve_client.py URL MODEL Z.npy OUT_JSON.npy OUT_BINARY.npy [TOKEN]
"""
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def main() -> None:
    url, model, z_path, out_json, out_bin = sys.argv[1:6]
    headers = {"Authorization": f"Bearer {sys.argv[6]}"} if len(sys.argv) > 6 else None
    z = np.load(z_path).astype(np.float32)
    c = httpclient.InferenceServerClient(url=url)
    assert c.is_server_live(), "not live"
    assert c.is_server_ready(), "not ready"
    assert c.is_model_ready(model), "model not ready"
    meta = c.get_model_metadata(model)
    (inp,), (out,) = meta["inputs"], meta["outputs"]
    assert inp["name"] == "z" and inp["datatype"] == "FP32", meta
    assert inp["shape"] == [-1, z.shape[1]], meta
    assert out["name"] == "images" and out["datatype"] == "FP32" and out["shape"][0] == -1, meta
    server = c.get_server_metadata()
    assert "binary_tensor_data" in server["extensions"], server

    results = {}
    for binary, path in [(False, out_json), (True, out_bin)]:
        x = httpclient.InferInput("z", list(z.shape), "FP32")
        x.set_data_from_numpy(z, binary_data=binary)
        want = httpclient.InferRequestedOutput("images", binary_data=binary)
        r = c.infer(model, inputs=[x], outputs=[want], request_id=f"req-{binary}", headers=headers)
        images = r.as_numpy("images")
        assert images.dtype == np.float32 and images.shape[:1] == z.shape[:1], images.shape
        assert r.get_response()["id"] == f"req-{binary}", r.get_response()
        np.save(path, images)
        results[binary] = images
    assert np.array_equal(results[False], results[True]), "JSON and binary outputs differ"

    # A wrong input name is refused with the protocol's error shape.
    bad = httpclient.InferInput("x", list(z.shape), "FP32")
    bad.set_data_from_numpy(z)
    try:
        c.infer(model, inputs=[bad], headers=headers)
    except InferenceServerException as e:
        assert "unknown or repeated input" in str(e), str(e)
    else:
        raise AssertionError("an unknown input was accepted")
    print(f"ok: {z.shape[0]} latents, images {list(results[True].shape)}, json == binary")


if __name__ == "__main__":
    main()
