"""rsmt_studio.inference"""
