"""Export trained keras-gen generators to SavedModel and TFLite (filled by the export work).

This package imports the library; the library never imports it.
"""
