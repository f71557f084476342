"""The served model: ``classifier.EmotionClassifier`` is the forward pass.

    EmotionClassifier.classify(posts)
      -> encoder.Encoder.encode        language.py (what it can read), text_normalization.py
                                       (emojis as words), preprocessing.py (image bytes),
                                       backbones.py / text_model.py / image_model.py
      -> fusion.FusionModel            the common-space heads (experts.py mixes them)
      -> Prediction                    label, scores, sentiment, modalities, language

``weights.Weights`` holds the shipped weights and their cards; training and evaluation
live in ``model/training/`` and are never imported on the served path.
"""
