"""Using a trained model: everything between a checkpoint (or an exported folder) and a translation.

    loading       `load_stage(dir)`: any stage's checkpoint, or an exported model folder, ready to decode
    model_paths   torch-free: what marks a model folder, a hub id's form, the early checks of a model path
    model_folder  the self-contained exported folder (`rvlf_model.json`, merged or referenced LM, DINOv2)
    pipeline      an input file -> `Prepared` (keypoints, crops, DINOv2 features) -> `decode` (beam search)
    overlay       keypoints and crop boxes drawn over frames, and over a whole video (`draw_overlay`)
    api           `SignTranslator`: `from_pretrained`, `prepare`, `translate`, `save_pretrained`
    export        `rvlf export`: a checkpoint -> a model folder with its scores and a Hugging Face model card
    app           `rvlf app`: the Gradio page (upload or webcam -> overlay, translation, n-best, timings)

Nothing here trains; `rvlf.train` never imports this package.
"""
