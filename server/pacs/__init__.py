"""PACS integration over DICOMweb: import studies (QIDO-RS + WADO-RS) and send results back (STOW-RS).

Images pass through the same de-identification as uploads before anything is written; the link from
de-identified to original UIDs lives in ``pacs_uid_links`` (admins and the worker only). See
``docs/pacs.md``.
"""
